"""Split one table into a bank side and a platform side, for evaluations on public data.

The bank gets the key, the label and the named columns; the platform the key
and everything else. Each side is shuffled on its own and keeps only a share of
the rows, so some firms exist at one side only, as they do in a real city.
When the table has no key, each row gets a valid synthetic USCC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enclave.data import uscc
from protocols.errors import DataError, SpecError

SYNTHETIC_KEY = "uscc"


@dataclass(frozen=True)
class Sides:
    key: str
    bank: pd.DataFrame
    platform: pd.DataFrame


def split_frame(
    df: pd.DataFrame, where: str, label: str, bank_columns: Sequence[str], *,
    key: str | None = None, keep: float = 0.95, seed: int = 7, sample: int | None = None,
) -> Sides:  # fmt: skip
    if label not in df.columns:
        raise DataError(f"{where}: label column {label!r} not in the file")
    missing = [c for c in bank_columns if c not in df.columns]
    if missing:
        raise DataError(f"{where}: bank column(s) {missing} not in the file")
    if label in bank_columns:
        raise SpecError(f"--bank-columns: the label {label!r} goes to the bank anyway; do not list it")
    if not 0.5 <= keep <= 1.0:
        raise SpecError(f"keep must be between 0.5 and 1.0, got {keep}")
    if sample is not None and sample < len(df):
        df = df.sample(n=sample, random_state=seed).reset_index(drop=True)
    if key is None:
        key = SYNTHETIC_KEY
        if key in df.columns:
            raise DataError(f"{where}: has a column named {key!r}; pass --key to use it")
        # A synthetic but valid unified social credit code per row.
        df = df.copy()
        df.insert(0, key, [uscc.from_index(i) for i in range(len(df))])
    elif key not in df.columns:
        raise DataError(f"{where}: key column {key!r} not in the file")
    rest = [c for c in df.columns if c not in (key, label, *bank_columns)]
    rng = np.random.default_rng(seed)
    n_keep = round(keep * len(df))
    bank = df.iloc[rng.permutation(len(df))[:n_keep]][[key, label, *bank_columns]].reset_index(drop=True)
    platform = df.iloc[rng.permutation(len(df))[:n_keep]][[key, *rest]].reset_index(drop=True)
    return Sides(key, bank, platform)
