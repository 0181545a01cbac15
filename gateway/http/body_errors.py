"""msgspec's refusals of a body, worded for clients: ``items[0].quantity: must be an integer from
1 to 1000``, with the field's path in ``field`` of the 422 (or other) problem.

msgspec names the first constraint a value broke and where; the wording here reads the field's
whole declaration (both bounds of a range, the choices of an enumeration, what its pattern
means), so one message tells the client everything the field accepts.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from gateway.http.field_checks import type_info
from gateway.http.problems import Problem, ProblemType

_WHERE = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_NAMED_FIELD = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>[^`]+)`$")
_WRONG_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_TYPE_WORDS = {
    "str": "must be a string",
    "int": "must be an integer",
    "bool": "must be a boolean",
    "object": "must be a JSON object",
    "array": "must be an array",
}


def refusal(error: msgspec.ValidationError, body_type: Any, kind: ProblemType) -> Problem:
    """The ``kind`` problem for ``error``, raised while reading a ``body_type``."""
    match = _WHERE.match(str(error))
    assert match is not None  # the pattern matches any text
    message, steps = match["message"], _steps(match["path"] or "")
    named = _NAMED_FIELD.match(message)
    if named is not None:
        steps = [*steps, named["name"]]
        wording = "is required" if named["what"] == "missing required" else "is not a known field"
    else:
        info, extra, required = _declaration(type_info(body_type), steps)
        wording = _wording(message, info, extra, required)
    field = _path(steps) or "body"
    return Problem(kind, f"{field}: {wording}", field=field)


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for name, index in _STEP.findall(path):
        steps.append(name if name else (int(index) if index.isdigit() else -1))
    return steps


def _path(steps: list[str | int]) -> str:
    text = ""
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]" if step >= 0 else "[...]"
        else:
            text = f"{text}.{step}" if text else step
    return text


def _declaration(info: mi.Type, steps: list[str | int]) -> tuple[mi.Type, dict[str, Any], bool]:
    """The declared type at ``steps`` below ``info``, the ``extra`` of its ``Meta`` and whether
    the field must be sent."""
    extra: dict[str, Any] = {}
    required = True
    for step in steps:
        info, extra = _core(info)
        if isinstance(info, mi.UnionType):
            info = _member_with(info, step)
            if isinstance(info, mi.LiteralType):  # the tag that chooses among the union's structs
                return info, {}, True
        if isinstance(info, mi.StructType) and isinstance(step, str):
            if step == info.tag_field:
                return mi.LiteralType(values=(info.tag,)), {}, True
            fields = {field.encode_name: field for field in info.fields}
            if step not in fields:
                return mi.AnyType(), {}, True
            info, required = fields[step].type, fields[step].required
        elif isinstance(info, mi.ListType):
            info, required = info.item_type, True
        elif isinstance(info, mi.DictType):
            info, required = info.value_type, True
        else:
            return mi.AnyType(), {}, True
    info, extra = _core(info)
    return info, extra, required


def _core(info: mi.Type) -> tuple[mi.Type, dict[str, Any]]:
    """``info`` without its ``Meta`` wrapper (and optional null/unset), and the ``Meta``'s extra."""
    extra: dict[str, Any] = {}
    if isinstance(info, mi.Metadata):
        extra = dict(info.extra or {})
        info = info.type
    if isinstance(info, mi.UnionType):
        members = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(members) == 1:
            inner, inner_extra = _core(members[0])
            return inner, {**inner_extra, **extra}
    return info, extra


def _member_with(union: mi.UnionType, step: str | int) -> mi.Type:
    """The struct of a tagged union that has the field ``step`` (for its tag: any of them)."""
    structs = [core for core, _ in map(_core, union.types) if isinstance(core, mi.StructType)]
    for struct in structs:
        if step == struct.tag_field:
            return mi.LiteralType(values=tuple(s.tag for s in structs if s.tag is not None))
        if any(field.encode_name == step for field in struct.fields):
            return struct
    return structs[0] if structs else union


def _wording(message: str, info: mi.Type, extra: dict[str, Any], required: bool) -> str:
    """What ``message`` means for a field declared as ``info``, in the API's words."""
    wrong = _WRONG_TYPE.match(message)
    if wrong is not None:
        if wrong["got"] == "null":
            # A field may say why null is no answer where "is required" would puzzle the client.
            return extra.get("null_error", "is required" if required else "cannot be null")
        return _TYPE_WORDS.get(wrong["expected"].split(" | ")[0], f"must be {wrong['expected']}")
    if message.startswith("Invalid") and "value" in message:
        choices = info.values if isinstance(info, mi.LiteralType) else ()
        if isinstance(info, mi.EnumType):
            choices = tuple(member.value for member in info.cls)
        return f"must be one of {', '.join(repr(choice) for choice in choices)}"
    if isinstance(info, mi.IntType):
        return f"must be an integer {_range(info.ge, info.le)}"
    if isinstance(info, mi.StrType):
        if "matching regex" in message:
            return extra.get("pattern_error", f"must be of the form {info.pattern}")
        return f"must be {info.min_length or 0} to {info.max_length} characters long"
    if isinstance(info, mi.ListType):
        return f"must have {info.min_length or 0} to {info.max_length} elements"
    return message[:1].lower() + message[1:]


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"from {minimum} to {maximum}"
    if minimum is not None:
        return f"of at least {minimum}"
    return f"of at most {maximum}"
