"""One party's own rows for a job, loaded and prepared inside its domain.

Every job program starts here: the party's dataset is read and validated, and
authorisation-required columns of firms without a valid authorisation become
missing before any computation (the node writes the authorised list into the
job directory). After PSI, the rows are put in the intersection's order.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from enclave.controls import consent
from enclave.data import dataset
from enclave.data import schema as sch
from models.jobtype import JobContext

CONSENT_FILE = "consent.json"
TMP_DIR = "tmp"

# PSI's key files in the job directory (models.psi writes them; every job removes them).
PSI_IN = "psi_in.csv"
PSI_OUT = "psi_out.csv"
PSI_REPORT = "psi_report.json"
# SPU leaves a digest of the input keys beside the input file.
KEY_FILES = (PSI_IN, PSI_OUT, PSI_IN + ".meta", PSI_REPORT)


@dataclass(frozen=True)
class Aligned:
    """This party's rows in the order of the aligned keys (the same order at every party)."""

    keys: np.ndarray
    frame: pd.DataFrame


@dataclass(frozen=True)
class LocalData:
    schema: sch.Schema
    frame: pd.DataFrame
    features: tuple[str, ...]
    label: str | None  # set at the label owner only
    withheld_firms: int

    @staticmethod
    def load(ctx: JobContext) -> LocalData:
        spec = ctx.spec
        schema, frame = dataset.load(ctx.dataset_dir, spec.columns(ctx.party))
        withheld = 0
        consent_file = ctx.job_dir / CONSENT_FILE
        if consent_file.is_file():
            doc = json.loads(consent_file.read_text())
            frame, withheld = consent.withhold(frame, schema.key, list(doc["columns"]), set(doc["authorised"]))
        label = spec.label if ctx.party == spec.label_party else None
        return LocalData(schema, frame, spec.party(ctx.party).features, label, withheld)

    @property
    def keys(self) -> pd.Series:
        return self.frame[self.schema.key]

    def align(self, keys: np.ndarray) -> Aligned:
        return Aligned(keys, self.frame.set_index(self.schema.key).loc[keys].reset_index())

    def x(self, aligned: Aligned) -> pd.DataFrame:
        """Features as a numeric matrix (categories by level order, dates as days)."""
        return dataset.encode_features(self.schema, aligned.frame, list(self.features))

    def y(self, aligned: Aligned) -> np.ndarray:
        if self.label is None:
            raise RuntimeError("the label was asked for at a party that does not hold it")
        return dataset.label_array(self.schema, aligned.frame, self.label)


def discard_transient(job_dir: Path, model_dir: Path, keep_model: bool) -> None:
    """Remove what a job must not leave behind: key files, the authorised-firm list and,
    unless the job succeeded, any model part it had begun to write."""
    for name in (*KEY_FILES, CONSENT_FILE):
        (job_dir / name).unlink(missing_ok=True)
    # And whatever PSI began beside its key files (a worker killed mid-PSI leaves e.g. psi_in.csv.temp.csv).
    for leftover in job_dir.glob("psi_*"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
    # Libraries' temporary files (PSI's sorted key lists among them) live here, never in /tmp.
    shutil.rmtree(job_dir / TMP_DIR, ignore_errors=True)
    if not keep_model:
        shutil.rmtree(model_dir, ignore_errors=True)


def write_key_file(path: Path, keys: pd.Series, name: str) -> None:
    """The key column alone, under the spec's key name, for PSI."""
    pd.DataFrame({name: keys.to_numpy()}).to_csv(path, index=False)
