"""Reading typed fields from a loaded YAML mapping, naming the dotted path on every error.

Used by the job-spec envelope and by every job type's parameter parser, so a
user sees the same kind of message wherever a spec is wrong:
``job.yaml: models.sgb.max_depth: expected an integer from 1 to 8, got 'deep'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave.home import NAME_RULE, is_plain_name
from protocols.errors import SpecError

_MISSING: Any = object()


class Fields:
    """One mapping of a spec; ``done()`` refuses keys nobody read."""

    def __init__(self, raw: Any, path: str, source: str) -> None:
        if not isinstance(raw, Mapping):
            raise SpecError(f"{source}: {path or 'top level'}: expected a mapping, got {type(raw).__name__}")
        self.raw, self.path, self.source = raw, path, source
        self.used: set[str] = set()

    def where(self, key: str = "") -> str:
        dotted = ".".join(p for p in (self.path, key) if p)
        return f"{self.source}: {dotted or 'top level'}"

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def get(self, key: str, default: Any = _MISSING) -> Any:
        self.used.add(key)
        if not self.has(key):
            if default is _MISSING:
                raise SpecError(f"{self.where(key)}: required field is missing")
            return default
        return self.raw[key]

    def str_(self, key: str, default: Any = _MISSING) -> str:
        v = self.get(key, default)
        if not isinstance(v, str) or not v:
            raise SpecError(f"{self.where(key)}: expected a non-empty string, got {v!r}")
        return v

    def name(self, key: str, default: Any = _MISSING) -> str:
        v = self.str_(key, default)
        if not is_plain_name(v):
            raise SpecError(f"{self.where(key)}: name {v!r} is invalid: {NAME_RULE}")
        return v

    def int_(self, key: str, default: int | None, lo: int, hi: int) -> int:
        v = self.get(key, _MISSING if default is None else default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise SpecError(f"{self.where(key)}: expected an integer from {lo} to {hi}, got {v!r}")
        return v

    def float_(self, key: str, default: float | None, lo: float, hi: float) -> float:
        v = self.get(key, _MISSING if default is None else default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= float(v) <= hi:
            raise SpecError(f"{self.where(key)}: expected a number from {lo} to {hi}, got {v!r}")
        return float(v)

    def bool_(self, key: str, default: bool) -> bool:
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise SpecError(f"{self.where(key)}: expected true or false, got {v!r}")
        return v

    def choice(self, key: str, default: str | None, options: tuple[str, ...]) -> str:
        v = self.get(key, _MISSING if default is None else default)
        if v not in options:
            raise SpecError(f"{self.where(key)}: expected one of {list(options)}, got {v!r}")
        return str(v)

    def names(self, key: str, default: list[str] | None = None) -> list[str]:
        """A list of non-empty, distinct strings (column names, party names)."""
        v = self.get(key, _MISSING if default is None else default)
        if not isinstance(v, list) or not all(isinstance(c, str) and c for c in v):
            raise SpecError(f"{self.where(key)}: expected a list of names")
        dup = sorted({c for c in v if v.count(c) > 1})
        if dup:
            raise SpecError(f"{self.where(key)}: names listed twice: {dup}")
        return list(v)

    def sub(self, key: str, default: Any = _MISSING) -> Fields:
        v = self.get(key, default)
        return Fields(v, ".".join(p for p in (self.path, key) if p), self.source)

    def done(self) -> None:
        extra = sorted(str(k) for k in set(self.raw) - self.used)
        if extra:
            raise SpecError(f"{self.where()}: unknown field(s) {extra}")
