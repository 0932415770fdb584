"""The one small module through which Safehouse reaches MLflow.

A job is one MLflow run: parameters, the job spec, data fingerprints (hashes
and counts, never data), metrics released by the label owner, ROC/KS plots,
time per stage. Each joint model is registered as a model version whose
artifact is a manifest naming every party's part by hash; the parts
themselves never leave their parties.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from enclave.files import sha256_json
from enclave.home import Home
from enclave.jobspec import JobSpec
from models import registry
from protocols.errors import NotFoundError
from protocols.messages import Fingerprint, Outputs

EXPERIMENT = "safehouse-joint-models"


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class Tracker:
    def __init__(self, tracking_uri: str, artifact_root: Path | None = None, experiment: str = EXPERIMENT) -> None:
        self.uri = tracking_uri
        self.client = _client(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            location = artifact_root.resolve().as_uri() if artifact_root is not None else None
            if artifact_root is not None:
                artifact_root.mkdir(parents=True, exist_ok=True)
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        else:
            self.experiment_id = exp.experiment_id

    @staticmethod
    def for_home(home: Home) -> Tracker:
        home.root.mkdir(parents=True, exist_ok=True)
        return Tracker(home.tracking_uri, home.artifact_root)

    def start(self, job_id: str, spec: JobSpec) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=job_id,
            tags={
                "safehouse.job_id": job_id,
                "safehouse.job_type": spec.job_type,
                "safehouse.label_party": spec.label_party,
                "safehouse.spec_sha256": spec.sha256,
                "safehouse.parties": ",".join(spec.party_names),
            },
        )
        run_id: str = run.info.run_id
        params: dict[str, Any] = {"job_type": spec.job_type, "key": spec.key, "purpose": spec.purpose}
        for p in spec.parties:
            params[f"{p.name}.dataset"] = p.dataset
            params[f"{p.name}.n_features"] = len(p.features)
        params.update(registry.get(spec.job_type).tracking_params(spec))
        self.log_params(run_id, params)
        self.client.log_text(run_id, spec.to_yaml(), "job/spec.yaml")
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])

    def log_fingerprints(self, run_id: str, fps: Mapping[str, Fingerprint]) -> None:
        self.client.log_dict(run_id, {p: f.__dict__ for p, f in fps.items()}, "job/data_fingerprints.json")
        self.log_params(run_id, {f"{p}.rows": f.rows for p, f in fps.items()})
        for p, f in fps.items():
            self.client.set_tag(run_id, f"safehouse.data.{p}.sha256", f.sha256)

    def log_outputs(self, run_id: str, outputs: Mapping[str, Outputs]) -> None:
        metrics: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for party, out in outputs.items():
                for k, v in out.metrics.items():
                    # Party-local facts (like PSI size) are namespaced by party.
                    metrics[k if is_model_metric(k) else f"{party}.{k}"] = v
                for stage, secs in out.stage_seconds.items():
                    metrics[f"seconds.{party}.{stage}"] = secs
                for a in out.artifacts:
                    if Path(a.name).name != a.name or a.name in ("", ".", ".."):
                        raise ValueError(f"artifact name {a.name!r} from {party!r} is not a plain file name")
                    path = Path(tmp) / a.name
                    path.write_bytes(a.data)
                    self.client.log_artifact(run_id, str(path), artifact_path="plots")
        self.log_metrics(run_id, metrics)

    def register(self, run_id: str, model_name: str, manifest: Mapping[str, Any]) -> str:
        """Register a model version whose artifact is the parts manifest."""
        from mlflow.exceptions import MlflowException

        path = f"models/{manifest['model']}/manifest.json"
        self.client.log_dict(run_id, dict(manifest), path)
        try:
            self.client.create_registered_model(
                model_name, description="Safehouse joint model: parts stay with their parties; see manifest.json"
            )
        except MlflowException as e:
            if "RESOURCE_ALREADY_EXISTS" not in str(e.error_code):
                raise
        source = f"{self.client.get_run(run_id).info.artifact_uri}/models/{manifest['model']}"
        mv = self.client.create_model_version(
            model_name,
            source,
            run_id=run_id,
            tags={"safehouse.manifest_sha256": sha256_json(manifest), "safehouse.job_id": str(manifest["job_id"])},
        )
        return str(mv.version)

    def manifest(self, name: str, version: str | None = None) -> tuple[str, dict[str, Any]]:
        """A registered model's version (the latest when none is named) and its parts manifest."""
        from mlflow.exceptions import MlflowException

        try:
            versions = self.client.search_model_versions(f"name = '{name}'")
        except MlflowException as e:
            raise NotFoundError(f"no registered model {name!r} ({e.error_code})") from None
        if not versions:
            raise NotFoundError(f"no registered model {name!r}")
        chosen = max(versions, key=lambda v: int(v.version)) if version is None else next(
            (v for v in versions if str(v.version) == str(version)), None
        )  # fmt: skip
        if chosen is None:
            raise NotFoundError(
                f"model {name!r} has no version {version} (versions: {sorted(v.version for v in versions)})"
            )
        kind = chosen.source.rstrip("/").rsplit("/", 1)[-1]
        path = self.client.download_artifacts(chosen.run_id, f"models/{kind}/manifest.json")
        return str(chosen.version), json.loads(Path(path).read_text())

    def registered(self) -> list[str]:
        """The names of every registered model."""
        return sorted(str(m.name) for m in self.client.search_registered_models())

    def link(self, run_id: str, name: str, version: str) -> None:
        """A run that used a model version, and the version, name each other."""
        self.client.set_tag(run_id, "safehouse.model_version", f"{name}:{version}")
        self.client.set_model_version_tag(name, version, f"safehouse.used_by.{run_id}", "scoring or monitoring run")

    def finish(self, run_id: str, state: str) -> None:
        """Close the run: succeeded -> FINISHED, cancelled -> KILLED, else FAILED."""
        status = {"succeeded": "FINISHED", "cancelled": "KILLED"}.get(state, "FAILED")
        self.client.set_tag(run_id, "safehouse.state", state)
        self.client.set_terminated(run_id, status=status)


def is_model_metric(metric: str) -> bool:
    """Model metrics come from the label owner only; they keep their plain names."""
    return metric.endswith(("_auc", "_ks")) or metric.startswith("test_")
