"""Stripe's form encoding: decoding a request body, and reading its parameters by type.

The SDK sends ``application/x-www-form-urlencoded`` bodies (``stripe/_encode.py``): nested hashes
as ``metadata[order_id]=o1``, arrays with indices as ``payment_method_types[0]=card``, booleans
as ``true``/``false`` and integers as their digits; a None value is left out. :func:`decode`
turns such a body into nested dicts of strings; :class:`Params` then reads each parameter as the
endpoint expects it (an integer, an array, a hash...), refusing what Stripe refuses with the
same error codes (``parameter_unknown``, ``parameter_missing``, ``parameter_invalid_integer``).

Indexed keys stay a hash (``{"0": "card"}``) until read as an array: only the endpoint knows
whether ``metadata[0]`` is a metadata key or ``payment_method_types[0]`` an array item, as on
Stripe's side. An empty ``key[]`` appends to an array.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from sandbox.stripe_face import errors
from sandbox.stripe_face.errors import StripeError

# A parameter name and its bracketed segments: name, name[a], name[a][0], name[].
_KEY = re.compile(r"[^\[\]]+(?:\[[^\[\]]*\])*")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INTEGER = re.compile(r"-?[0-9]{1,18}")

# More fields than any request of this face needs, but a bound on what one body can make us hold.
MAX_FIELDS = 1000
MAX_STRING = 5000
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500


def decode(body: bytes) -> dict[str, Any]:
    """Decode a form body into nested dicts (hashes) and lists (``key[]`` arrays) of strings.

    Raises a 400 :class:`StripeError` for a body that is not UTF-8 form encoding, a malformed
    name, or one name given twice or both as a value and as a hash.
    """
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise errors.invalid(
            "Invalid request body: expected application/x-www-form-urlencoded parameters in UTF-8 "
            f"(at most {MAX_FIELDS})."
        ) from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        _put(root, key, value)
    return root


def _put(root: dict[str, Any], key: str, value: str) -> None:
    if not _KEY.fullmatch(key):
        raise errors.invalid(f"Invalid parameter name: {key!r}")
    path = [key.partition("[")[0], *_SEGMENT.findall(key)]
    append = path[-1] == ""
    if append:
        path.pop()  # what remains names the array itself
    *parents, last = path
    node = root
    for segment in parents:
        child = node.setdefault(segment, {}) if segment else None
        if not isinstance(child, dict):
            # An empty segment inside a name (a[][b]), or a name that is a value and a hash.
            raise _conflict(key)
        node = child
    if not last:
        raise _conflict(key)
    if append:
        items = node.setdefault(last, [])
        if not isinstance(items, list):
            raise _conflict(key)
        items.append(value)
    elif last in node:
        raise _conflict(key)
    else:
        node[last] = value


def _conflict(key: str) -> StripeError:
    return errors.invalid(
        f"Invalid parameter {key!r}: it is given twice, or both as a value and as a hash or array.",
        param=key.partition("[")[0],
    )


class Params:
    """The decoded parameters of one request, or of one hash within it, read by type.

    Creating it refuses any parameter not in ``allowed`` (400 ``parameter_unknown``). An empty
    string counts as not given, as Stripe reads it ("unset").
    """

    def __init__(self, values: dict[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
        self.values = values
        self.prefix = prefix
        allowed = set(allowed)
        for name in values:
            if name not in allowed:
                raise errors.unknown(self.name(name))

    def name(self, name: str) -> str:
        """The parameter's full name as Stripe's errors give it (``payment_method_data[type]``)."""
        return f"{self.prefix}[{name}]" if self.prefix else name

    def given(self, name: str) -> bool:
        """Whether the parameter was sent with a value."""
        return self.values.get(name) not in (None, "")

    def _text(self, name: str, required: bool) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise errors.missing(self.name(name))
            return None
        if not isinstance(value, str):
            raise errors.invalid(
                f"Invalid {self.name(name)}: expected a single value, got a hash or an array.",
                param=self.name(name),
            )
        return value

    def string(self, name: str, *, required: bool = False, max_length: int = MAX_STRING) -> str | None:
        """A string parameter of at most ``max_length`` characters."""
        value = self._text(name, required)
        if value is not None and len(value) > max_length:
            raise errors.invalid(
                f"Invalid {self.name(name)}: must be at most {max_length} characters", param=self.name(name)
            )
        return value

    def integer(self, name: str, *, required: bool = False) -> int | None:
        """An integer parameter, sent as its digits."""
        value = self._text(name, required)
        if value is None:
            return None
        if not _INTEGER.fullmatch(value):
            raise errors.invalid(
                f"Invalid integer: {value}", code="parameter_invalid_integer", param=self.name(name)
            )
        return int(value)

    def boolean(self, name: str) -> bool | None:
        """A boolean parameter, sent as ``true`` or ``false``."""
        value = self._text(name, required=False)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise errors.invalid(f"Invalid boolean: {value}", param=self.name(name))
        return value == "true"

    def string_list(self, name: str) -> list[str] | None:
        """An array of non-empty strings, sent as ``name[0]=..`` (or ``name[]=..``)."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, dict):
            # Indices must be 0..n-1, whatever order they came in.
            if set(value) != {str(i) for i in range(len(value))}:
                raise errors.invalid(f"Invalid array: {self.name(name)}", param=self.name(name))
            value = [value[str(i)] for i in range(len(value))]
        if not isinstance(value, list):
            raise errors.invalid(f"Invalid array: {self.name(name)}", param=self.name(name))
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item or len(item) > MAX_STRING:
                item_name = f"{self.name(name)}[{index}]"
                raise errors.invalid(f"Invalid {item_name}: expected a non-empty string", param=item_name)
        return value

    def hash(self, name: str, allowed: Iterable[str]) -> Params | None:
        """A hash parameter (``name[key]=..``), read with the keys it may have."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise errors.invalid(f"Invalid object: {self.name(name)} must be a hash", param=self.name(name))
        return Params(value, allowed, prefix=self.name(name))

    def metadata(self, name: str = "metadata") -> dict[str, str]:
        """Stripe's metadata: at most 50 keys of 40 characters, values strings of at most 500;
        a key sent empty is left out (on Stripe that unsets it)."""
        value = self.values.get(name)
        if value is None or value == "":
            return {}
        if not isinstance(value, dict):
            raise errors.invalid(f"Invalid object: {self.name(name)} must be a hash", param=self.name(name))
        if len(value) > MAX_METADATA_KEYS:
            raise errors.invalid(
                f"Invalid {self.name(name)}: at most {MAX_METADATA_KEYS} keys", param=self.name(name)
            )
        metadata: dict[str, str] = {}
        for key, item in value.items():
            key_name = f"{self.name(name)}[{key}]"
            if len(key) > MAX_METADATA_KEY:
                raise errors.invalid(
                    f"Invalid {key_name}: keys must be at most {MAX_METADATA_KEY} characters", param=key_name
                )
            if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE:
                raise errors.invalid(
                    f"Invalid {key_name}: values must be strings of at most {MAX_METADATA_VALUE} characters",
                    param=key_name,
                )
            if item:
                metadata[key] = item
        return metadata
