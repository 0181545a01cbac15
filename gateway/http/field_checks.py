"""The checks a field declares beside its JSON Schema constraints, run on a decoded body.

A field annotated ``Annotated[str, Meta(..., extra={"check": function})]`` has ``function``
applied to its decoded value: it returns the value to keep (an email in its canonical form, say)
or raises ``ValueError`` with the refusal's wording (``"must be an email address"``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi

Check = Callable[[Any], Any]


class FieldError(ValueError):
    """A field's own check refused its value; ``path`` reads like ``payment.token``."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@cache
def type_info(body_type: Any) -> mi.Type:
    """msgspec's description of ``body_type`` (computed once per type)."""
    return mi.type_info(body_type)


def apply_checks(body: Any, body_type: Any) -> None:
    """Run every declared check of ``body`` (a decoded ``body_type``), replacing values as told."""
    _walk(body, type_info(body_type), "")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(value: Any, info: mi.Type, path: str) -> Any:
    if value is None or value is msgspec.UNSET:
        return value
    if isinstance(info, mi.Metadata):
        check = (info.extra or {}).get("check")
        if check is not None:
            try:
                value = check(value)
            except ValueError as error:
                raise FieldError(path, str(error)) from None
        return _walk(value, info.type, path)
    if isinstance(info, mi.UnionType):
        member = _member_for(value, info)
        return value if member is None else _walk(value, member, path)
    if isinstance(info, mi.StructType):
        for field in info.fields:
            current = getattr(value, field.name)
            checked = _walk(current, field.type, _join(path, field.encode_name))
            if checked is not current:
                setattr(value, field.name, checked)
        return value
    if isinstance(info, mi.ListType):
        for index, element in enumerate(value):
            checked = _walk(element, info.item_type, f"{path}[{index}]")
            if checked is not element:
                value[index] = checked
    return value


def _member_for(value: Any, union: mi.UnionType) -> mi.Type | None:
    """The member of ``union`` that ``value`` was decoded as."""
    for member in union.types:
        core = member.type if isinstance(member, mi.Metadata) else member
        if isinstance(core, mi.StructType) and type(value) is core.cls:
            return member
        if isinstance(core, mi.ListType) and isinstance(value, list):
            return member
        if isinstance(core, mi.DictType) and isinstance(value, dict):
            return member
        if isinstance(core, mi.StrType) and isinstance(value, str):
            return member
    return None
