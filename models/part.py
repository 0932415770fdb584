"""A party's record of its own model part: ``part.json`` beside the part's files.

Training writes it in every party's part directory: the job that trained the
part, the model kind, the label owner, and the dataset and features this party
trained it on. It lets a party use its part again on its own terms: a scoring
job checks that the spec names the same features, and the online scoring
service reads the right table and answers only the model's label owner, all
without trusting what a caller sends. It is part of the part's hash.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from enclave.files import sha256_dir, write_json
from protocols.errors import SpecError

FILE = "part.json"
FORMAT = 1
KINDS = ("sgb", "sslr", "scorecard")
ONLINE_KINDS = ("sgb", "sslr")  # kinds the online scoring service loads


@dataclass(frozen=True)
class PartRecord:
    job_id: str
    kind: str
    party: str
    label_party: str
    key: str
    dataset: str
    features: tuple[str, ...]
    parties: tuple[str, ...]

    def write(self, directory: Path) -> None:
        write_json(directory / FILE, {"format": FORMAT, **asdict(self)})

    @staticmethod
    def read(directory: Path) -> PartRecord:
        path = directory / FILE
        if not path.is_file():
            raise SpecError(f"{directory}: no {FILE} here; this part predates scoring, retrain the model")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.pop("format") != FORMAT:
                raise ValueError("unknown format")
            record = PartRecord(**{**doc, "features": tuple(doc["features"]), "parties": tuple(doc["parties"])})
        except (ValueError, KeyError, TypeError) as e:
            raise SpecError(f"{path}: not a part record ({e}); retrain the model") from None
        if record.kind not in KINDS:
            raise SpecError(f"{path}: unknown model kind {record.kind!r}")
        return record


@dataclass(frozen=True)
class Loaded:
    """A part in memory: its record, its hash, and the model piece of its kind."""

    record: PartRecord
    sha256: str
    linear: Any = None  # models.linear.LinearPart, for sslr
    tree: Any = None  # models.secureboost ActivePart or PassivePart, for sgb
    tree_prep: Any = None  # models.prep.TreePrep, for sgb

    @property
    def link(self) -> str:
        """How raw scores become probabilities (see models.scoring.probability)."""
        return str(self.linear.link) if self.linear is not None else "logistic"


def load(directory: Path) -> Loaded:
    """A party's part from its directory (the hash is taken over the files as read)."""
    record = PartRecord.read(directory)
    if record.kind not in ONLINE_KINDS:
        raise SpecError(f"{directory}: online scoring of a {record.kind} is not supported yet; use `safehouse score`")
    digest = sha256_dir(directory)
    if record.kind == "sslr":
        from models.linear import LinearPart

        return Loaded(record, digest, linear=LinearPart.load(directory, record.party))
    from models import secureboost
    from models.prep import TreePrep

    return Loaded(record, digest, tree=secureboost.load_part(directory), tree_prep=TreePrep.load(directory))
