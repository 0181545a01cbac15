"""The API's own description: ``GET /openapi.json`` (OpenAPI 3.0.3) and a readable ``GET /docs`` page.

:mod:`gateway.openapi.spec` holds the document as Python data, built from the handlers' own
constants where they share them; :mod:`gateway.openapi.handlers` serves it and the Swagger UI page.
``tests/integration/test_openapi.py`` keeps it true: every route the app registers is described,
and nothing else.
"""
