"""SecretFlow production mode for one worker: the cross-silo link and the devices
its job type's description asks for (SPU with CHEETAH, HEU), over the links
``links.plan`` lays out."""

from __future__ import annotations

from typing import Any

from enclave.jobspec import JobSpec
from models.jobtype import Devices
from parties.worker.links import LinkPlan

# Long jobs send rarely between stages: generous receive timeouts, patient connects.
_LINK = {"connect_retry_times": 120, "connect_retry_interval_ms": 500, "recv_timeout_ms": 30 * 60 * 1000}


def init(job_id: str, party: str, links: LinkPlan, spec: JobSpec, needs: Devices) -> dict[str, Any]:
    import secretflow as sf

    sf.init(
        address="local",
        cluster_config={"parties": links.parties, "self_party": party},
        ray_mode=False,
        cross_silo_comm_backend="brpc_link",
        cross_silo_comm_options={"exit_on_sending_failure": True, **_LINK},
        job_name=job_id,
        logging_level="warning",
    )
    devices: dict[str, Any] = {}
    if needs.spu:
        devices["spu"] = _spu(links)
    if needs.heu is not None:
        devices["heu"] = _heu(spec, needs.heu.schema, needs.heu.key_bits)
    return devices


def _spu(links: LinkPlan) -> Any:
    """CHEETAH on two nodes: no party deals randomness that could open another's shares."""
    import secretflow as sf
    import spu as spulib

    config = {"protocol": spulib.spu_pb2.CHEETAH, "field": spulib.spu_pb2.FM64}
    return sf.SPU({"nodes": links.spu_nodes, "runtime_config": config}, link_desc=dict(_LINK))


def _heu(spec: JobSpec, schema: str, key_bits: int) -> Any:
    """The label owner keeps the secret key; every other party evaluates."""
    import secretflow as sf
    import spu as spulib

    evaluators = [{"party": p} for p in spec.party_names if p != spec.label_party]
    config = {
        "sk_keeper": {"party": spec.label_party},
        "evaluators": evaluators,
        "mode": "PHEU",
        "he_parameters": {"schema": schema, "key_pair": {"generate": {"bit_size": key_bits}}},
    }
    return sf.HEU(config, spulib.spu_pb2.FM128)


def shutdown_within(seconds: float) -> None:
    """Flush pending sends to the peers, but never hang on a dead link."""
    import os
    import threading

    import secretflow as sf

    timer = threading.Timer(seconds, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    sf.shutdown()
    timer.cancel()
