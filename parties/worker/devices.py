"""SecretFlow production mode for one worker: the cross-silo link and the devices
its job type's description asks for (SPU with CHEETAH), over the links
``links.plan`` lays out. Homomorphic encryption needs no device: the SecureBoost
engine holds its own HEU keys (the label owner keeps the secret key) and sends
ciphertexts over the same cross-silo link."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from models.jobtype import Devices
from parties.worker import links as links_mod
from parties.worker.links import LinkPlan
from protocols.messages import Endpoint

# Long jobs send rarely between stages: generous receive timeouts, patient connects.
_LINK = {"connect_retry_times": 120, "connect_retry_interval_ms": 500, "recv_timeout_ms": 30 * 60 * 1000}


def init(job_id: str, party: str, links: LinkPlan, needs: Devices) -> dict[str, Any]:
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
    return devices


def init_loopback(party: str, ports: Mapping[str, Sequence[int]], job_id: str, recv_timeout_ms: int) -> None:
    """Production mode over *plaintext* loopback links, one process per party (``ports``: each
    party's link and SPU ports): how the SecureBoost engine's tests and benchmark start their
    parties. They exercise an engine, not a deployment: no TLS, no devices. A failing party
    reports its traceback first instead of SecretFlow ending the process at once."""
    import secretflow as sf

    os.environ.setdefault("SF_UT_DO_NOT_EXIT_ENV_FLAG", "1")
    cluster = [Endpoint(p, "127.0.0.1", *pair) for p, pair in ports.items()]
    plan = links_mod._plaintext(party, cluster, [])
    options = {"exit_on_sending_failure": True, **_LINK, "recv_timeout_ms": recv_timeout_ms}
    sf.init(address="local", cluster_config={"parties": plan.parties, "self_party": party}, ray_mode=False,
            cross_silo_comm_backend="brpc_link", cross_silo_comm_options=options, job_name=job_id,
            logging_level="warning")  # fmt: skip


def _spu(links: LinkPlan) -> Any:
    """CHEETAH on two nodes: no party deals randomness that could open another's shares."""
    import secretflow as sf
    import spu as spulib

    config = {"protocol": spulib.spu_pb2.CHEETAH, "field": spulib.spu_pb2.FM64}
    return sf.SPU({"nodes": links.spu_nodes, "runtime_config": config}, link_desc=dict(_LINK))


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
