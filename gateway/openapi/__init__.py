"""The API's own description: ``GET /openapi.json`` (OpenAPI 3.0.3) and a readable ``GET /docs`` page.

:mod:`gateway.openapi.spec` holds the paths, operations, parameters and responses;
:mod:`gateway.openapi.components` generates the request body schemas from the msgspec types that
read those bodies; :mod:`gateway.openapi.handlers` serves the document and the Swagger UI page.
``tests/integration/test_openapi.py`` keeps it true: every route the app registers is described,
and nothing else.
"""
