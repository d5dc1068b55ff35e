"""One JSON round trip for the dataclasses that learning code writes to disk.

Configs (``GeneratorConfig``, ``PPOConfig``, ...) and run histories (``TrainHistory``,
``RefineHistory``, ...) are stored beside weights and checkpoints as JSON. They all
need the same two things: a plain dict out (tuples as lists) and the dataclass back,
with a key the class does not know refused by name (a file written by another
version, or a typo in a hand-edited config, must not be dropped silently).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Self

__all__ = ["JsonRecord", "known_fields"]


def known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as constructor arguments of the dataclass ``cls``, lists back to tuples.

    A field annotated ``tuple[...]`` gets a tuple (JSON has only lists); a
    ``list[...]`` field gets a copy, so the record does not share the caller's list.

    Raises:
        ValueError: ``data`` has keys that are not fields of ``cls`` (named, with the
            known ones).
    """
    kinds = {f.name: str(f.type) for f in fields(cls)}
    unknown = sorted(set(data) - set(kinds))
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no fields {unknown}; known fields are {sorted(kinds)}."
        )
    values = dict(data)
    for name, value in values.items():
        if isinstance(value, list | tuple):
            if kinds[name].startswith("tuple"):
                values[name] = tuple(value)
            elif kinds[name].startswith("list"):
                values[name] = list(value)
    return values


class JsonRecord:
    """Mixin for a dataclass stored as JSON: ``to_dict`` and ``from_dict`` (module doc)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        data = asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of ``to_dict``; unknown keys are an error naming them."""
        return cls(**known_fields(cls, data))
