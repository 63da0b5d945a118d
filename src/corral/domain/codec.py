"""Plain-data encoding of domain values (for the store, the agent protocol and the API).

msgspec walks the dataclasses' type hints, so the encoding follows the domain without a second schema.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


def to_builtins(value: object) -> Any:
    """A domain value as dicts, lists, strings and numbers."""
    return msgspec.to_builtins(value)


def from_builtins(data: Any, kind: type[T]) -> T:
    """Rebuild a domain value from plain data; raises msgspec.ValidationError when it does not match."""
    return msgspec.convert(data, kind)


def to_json(value: object) -> bytes:
    return _encoder.encode(value)


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def from_json(data: bytes | str, kind: type[T]) -> T:
    decoder = _decoders.get(kind)
    if decoder is None:  # one decoder per type: loading 100,000 tasks should not build 100,000 of them
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    value: T = decoder.decode(data)
    return value


DecodeError = msgspec.ValidationError
