"""msgspec writes JSON Schema 2020-12; OpenAPI 3.0.3 reads an older dialect. This rewrites the
few spellings that differ, so generated schemas can stand in the document unchanged in meaning."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

#: Matches null only. OpenAPI 3.0.3's ``nullable`` acts only beside a ``type``, so a ``$ref`` (or an
#: ``anyOf``) that may be null is spelled ``anyOf: [<schema>, NULL]``, which strict validators honour.
NULL: Schema = {"type": "object", "nullable": True, "enum": [None]}


def openapi_30(schema: Any) -> Any:
    """``schema`` (JSON Schema 2020-12, as msgspec writes it) in OpenAPI 3.0.3's dialect."""
    if isinstance(schema, list):
        return [openapi_30(member) for member in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: openapi_30(value) for key, value in schema.items()}
    if "anyOf" in converted:
        converted = _nullable(converted)
    if "examples" in converted:
        examples = converted.pop("examples")
        if examples:
            converted["example"] = examples[0]
    if converted.get("required") == []:
        del converted["required"]
    enum = converted.get("enum")
    if enum and "type" not in converted and all(isinstance(value, str) for value in enum):
        converted["type"] = "string"
    return converted


def _nullable(schema: Schema) -> Schema:
    """``anyOf: [X, {type: null}]`` as ``X`` with ``nullable`` (or ``anyOf: [X, NULL]`` for a reference)."""
    members = schema["anyOf"]
    others = [member for member in members if member != {"type": "null"}]
    if len(others) == len(members):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(others) == 1 and "type" in others[0] and "$ref" not in others[0]:
        merged = {**others[0], **rest, "nullable": True}
        # ``nullable`` does not widen an ``enum``: null must be one of its values to be allowed.
        if "enum" in merged and None not in merged["enum"]:
            merged["enum"] = [*merged["enum"], None]
        return merged
    inner = others[0] if len(others) == 1 else {"anyOf": others}
    return {**rest, "anyOf": [inner, NULL]}
