"""What a job type is: one description that every role reads.

A job type declares its typed parameters (parsed from its own top-level keys
of a spec), the outputs it may ever release, its stages, the devices its
workers need, and how the coordinator builds its summary and the manifests of
the models it registers. The gate, worker, node, coordinator, tracking and CLI
read this description; none of them names a job type. The program itself is
named as ``module:function`` and imported only by the worker that runs it, so
nodes and the coordinator start without the modelling libraries.
"""

from __future__ import annotations

import csv
import io
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from enclave.controls.gate import Declared
from enclave.fields import Fields
from enclave.jobspec import JobParams, JobSpec
from protocols.messages import Fingerprint, Outputs

Emit = Callable[[str, str], None]


@dataclass(frozen=True)
class HeuNeeds:
    """The homomorphic encryption a program uses: scheme and key size (nodes refuse short keys).

    The program makes its own keys (the label owner keeps the secret key); no device is set up for it."""

    schema: str
    key_bits: int


@dataclass(frozen=True)
class Devices:
    """What a worker must set up before the program runs."""

    spu: bool = False
    heu: HeuNeeds | None = None


@dataclass(frozen=True)
class JobContext:
    """What the worker hands a job program: all of it local to this party."""

    job_id: str
    party: str
    spec: JobSpec
    dataset_dir: Path
    job_dir: Path
    model_dir: Path
    emit: Emit

    @property
    def outputs_dir(self) -> Path:
        return self.job_dir / "outputs"

    @property
    def models_root(self) -> Path:
        """Where this party keeps the parts of every model it helped train."""
        return self.model_dir.parent


@dataclass(frozen=True)
class ProgramResult:
    """What one party's program leaves for its node: only this may be gated out."""

    party: str
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: tuple[str, ...] = ()  # file names under the job's outputs directory
    model_parts: dict[str, str] = field(default_factory=dict)  # model -> sha256 of this party's part
    stage_seconds: dict[str, float] = field(default_factory=dict)
    withheld_firms: int = 0  # firms whose authorisation-required values were blanked
    security: dict[str, str] = field(default_factory=dict)  # set by the worker: how links and devices were protected

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> ProgramResult:
        d = json.loads(text)
        return ProgramResult(
            party=str(d["party"]),
            metrics={str(k): float(v) for k, v in d.get("metrics", {}).items()},
            artifacts=tuple(str(a) for a in d.get("artifacts", ())),
            model_parts={str(k): str(v) for k, v in d.get("model_parts", {}).items()},
            stage_seconds={str(k): float(v) for k, v in d.get("stage_seconds", {}).items()},
            withheld_firms=int(d.get("withheld_firms", 0)),
            security={str(k): str(v) for k, v in d.get("security", {}).items()},
        )


Program = Callable[[JobContext, Mapping[str, Any]], ProgramResult]


class JobType(ABC):
    """The description of one job type; one instance per type, registered in ``models.registry``."""

    name: str
    title: str
    stages: tuple[str, ...]
    outputs: tuple[Declared, ...]
    program: str  # "module:function", imported by the worker only
    model_kinds: tuple[str, ...] = ()  # the models a job of this type reports, in the order people read them
    public_keys: tuple[str, ...] = ()  # keys of its summary that ``run --json`` writes beside the envelope's
    headline: str = ""  # the key of its summary that ``safehouse run`` prints

    @abstractmethod
    def parse_params(self, top: Fields) -> JobParams:
        """Read this type's own top-level keys of a spec (``top.done()`` is the envelope's)."""

    def validate(self, spec: JobSpec) -> None:
        """Refuse a spec this job type cannot run (beyond its parameters' own checks)."""
        return None

    def check_party(self, spec: JobSpec, party: str, party_root: Path) -> None:
        """What one party's node checks in its own domain before it accepts the job
        (a model part it must hold, say); refuses with ``RefusedError``."""
        return None

    @abstractmethod
    def devices(self, spec: JobSpec) -> Devices:
        """The devices the workers of this job need."""

    @abstractmethod
    def summary(self, spec: JobSpec, outputs: Mapping[str, Outputs]) -> dict[str, Any]:
        """This type's part of the job summary, from what every node released."""

    def manifests(
        self, spec: JobSpec, job_id: str, outputs: Mapping[str, Outputs], fingerprints: Mapping[str, Fingerprint]
    ) -> dict[str, dict[str, Any]]:
        """Models to register, by model kind: a manifest naming every party's part by hash."""
        return {}

    def model_versions(self, spec: JobSpec) -> list[tuple[str, str]]:
        """Registered model versions a job of this type uses (its run and they name each other)."""
        return []

    def tracking_params(self, spec: JobSpec) -> dict[str, Any]:
        """Parameters to record with the job's MLflow run, beyond the envelope's."""
        return {}

    def model_title(self, kind: str) -> str:
        """How people name a model kind of this job type in tables and plots."""
        return kind


def csv_rows(outputs: Outputs, name: str) -> list[dict[str, str]] | None:
    """The rows of a CSV table a party released under ``name``; None when it released none."""
    found = next((a for a in outputs.artifacts if a.name == name), None)
    return None if found is None else list(csv.DictReader(io.StringIO(found.data.decode())))


def read_outputs(ctx: JobContext) -> tuple[dict[str, float], tuple[str, ...]]:
    """The metrics and artifact names a program wrote to ``outputs/metrics.json`` (none where it wrote none)."""
    f = ctx.outputs_dir / "metrics.json"
    if not f.is_file():
        return {}, ()
    doc = json.loads(f.read_text())
    return {k: float(v) for k, v in doc["metrics"].items()}, tuple(doc["artifacts"])


class StageClock:
    """Announces each stage to the node and times it: ``with clock.stage("psi", "PSI on uscc"): ...``."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        self.emit(name, detail or f"{name} started")
        t0 = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t0, 3)
