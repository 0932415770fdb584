"""Declared dataset schemas: every column's type, role, levels, access and category.

Each dataset lives in its own directory inside its owner's domain as
``data.parquet`` beside ``schema.yaml``; ``dataset`` loads and validates the
data against this declaration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from enclave.home import check_name
from protocols.errors import DataError, SpecError

SCHEMA_FILE = "schema.yaml"
TYPES = ("string", "int", "float", "bool", "date", "category", "uscc")
ROLES = ("key", "label", "feature", "meta")
# How the platform obtains a column (catalogue 共享方式): collected in bulk, or by
# interface call under the firm's authorisation.
ACCESS = ("collected", "interface")
LABEL_TYPES = ("int", "bool", "category")
COLUMN_FIELDS = frozenset(
    {"name", "type", "role", "nullable", "values", "description", "access", "category", "positive", "adverse"}
)


def canonical(value: object) -> str:
    """One text per label value however a file spells it: 1, 1.0 and "1" are "1";
    True and "TRUE" are "true"; other text is kept as written (stripped)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


@dataclass(frozen=True)
class Column:
    """One declared column."""

    name: str
    type: str
    role: str = "feature"
    nullable: bool = True
    values: tuple[str, ...] = ()  # category levels, in their natural order
    description: str = ""
    access: str = "collected"
    # The catalogue category (tax, judicial, ...) a platform column comes from.
    category: str = ""
    # For the label: the value that marks the positive class (a default, say).
    positive: str | None = None
    # An adverse public record (enforcement cases, arrears, penalties): monitoring flags a firm when it rises.
    adverse: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise SpecError(f"column {self.name!r}: type {self.type!r} is not one of {TYPES}")
        if self.role not in ROLES:
            raise SpecError(f"column {self.name!r}: role {self.role!r} is not one of {ROLES}")
        if self.access not in ACCESS:
            raise SpecError(f"column {self.name!r}: access {self.access!r} is not one of {ACCESS}")
        if self.type == "category" and not self.values:
            raise SpecError(f"column {self.name!r}: a category column must list its values")
        if self.positive is not None and self.role != "label":
            raise SpecError(f"column {self.name!r}: only the label names a positive value")
        if self.role == "label":
            if self.type not in LABEL_TYPES:
                raise SpecError(f"column {self.name!r}: a label is one of {LABEL_TYPES}, not {self.type!r}")
            if self.type == "category" and (len(self.values) != 2 or self.positive not in self.values):
                raise SpecError(
                    f"column {self.name!r}: a text label lists its two values and names one of them as positive"
                )

    @property
    def positive_value(self) -> str:
        """The canonical text of the positive class (see ``canonical``)."""
        if self.positive is not None:
            return self.positive
        return "true" if self.type == "bool" else "1"


@dataclass(frozen=True)
class Schema:
    """A dataset's declaration: its key column and every other column."""

    name: str
    owner: str
    key: str
    columns: tuple[Column, ...]
    description: str = ""
    by_name: Mapping[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name("dataset", self.name)
        check_name("party", self.owner)
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"schema {self.name!r}: columns declared twice: {dupes}")
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        if self.key not in self.by_name:
            raise SpecError(f"schema {self.name!r}: key column {self.key!r} is not declared")

    def column(self, name: str) -> Column:
        if name not in self.by_name:
            raise SpecError(f"dataset {self.name!r} has no column {name!r}")
        return self.by_name[name]

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "feature"]

    def to_dict(self) -> dict[str, Any]:
        cols = []
        for c in self.columns:
            d: dict[str, Any] = {"name": c.name, "type": c.type, "role": c.role}
            if not c.nullable:
                d["nullable"] = False
            if c.values:
                d["values"] = list(c.values)
            if c.access != "collected":
                d["access"] = c.access
            if c.category:
                d["category"] = c.category
            if c.positive is not None:
                d["positive"] = c.positive
            if c.adverse:
                d["adverse"] = True
            if c.description:
                d["description"] = c.description
            cols.append(d)
        return {
            "name": self.name,
            "owner": self.owner,
            "key": self.key,
            "description": self.description,
            "columns": cols,
        }

    @staticmethod
    def from_dict(raw: Any, source: str) -> Schema:
        if not isinstance(raw, dict):
            raise SpecError(f"{source}: expected a mapping at top level")
        for f in ("name", "owner", "key", "columns"):
            if f not in raw:
                raise SpecError(f"{source}: missing field {f!r}")
        if not isinstance(raw["columns"], list) or not raw["columns"]:
            raise SpecError(f"{source}: 'columns' must be a non-empty list")
        cols = []
        for i, c in enumerate(raw["columns"]):
            if not isinstance(c, dict) or "name" not in c or "type" not in c:
                raise SpecError(f"{source}: columns[{i}] needs 'name' and 'type'")
            unknown = set(c) - COLUMN_FIELDS
            if unknown:
                raise SpecError(f"{source}: columns[{i}] ({c['name']}) has unknown fields {sorted(unknown)}")
            try:
                cols.append(
                    Column(
                        name=str(c["name"]),
                        type=str(c["type"]),
                        role=str(c.get("role", "feature")),
                        nullable=bool(c.get("nullable", True)),
                        values=tuple(str(v) for v in c.get("values", ()) or ()),
                        description=str(c.get("description", "")),
                        access=str(c.get("access", "collected")),
                        category=str(c.get("category", "")),
                        positive=None if c.get("positive") is None else canonical(c["positive"]),
                        adverse=bool(c.get("adverse", False)),
                    )
                )
            except SpecError as e:
                raise SpecError(f"{source}: {e}") from None
        try:
            return Schema(
                name=str(raw["name"]),
                owner=str(raw["owner"]),
                key=str(raw["key"]),
                columns=tuple(cols),
                description=str(raw.get("description", "")),
            )
        except SpecError as e:
            raise SpecError(f"{source}: {e}") from None


def read_schema(directory: Path) -> Schema:
    path = directory / SCHEMA_FILE
    if not path.is_file():
        raise DataError(f"{path}: schema file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    return Schema.from_dict(raw, str(path))
