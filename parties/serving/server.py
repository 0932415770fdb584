"""``safehouse serve --party P``: a party's scoring service, until SIGTERM/SIGINT.

It starts the parts of the service this party has a use for: the contributor
(gRPC, mutual TLS) when it holds parts of other parties' models, the scorer and
its HTTPS endpoint when it is the label owner of registered models. It writes
``serving.json`` in the party's home (addresses, pid, loaded models) for local
tools, and removes it on the way out. In a local federation (one machine, one
shared federation file) it records its gRPC address there for its partners;
elsewhere the federation operator names each party's ``scoring`` address. Its audit entries go to the party's own
``audit-serving.jsonl``, signed with the party's key, beside the node's trail.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave import federation
from enclave.controls import keys
from enclave.controls.audit import SERVING_AUDIT_FILE, AuditLog
from enclave.files import write_atomic
from parties.node.config import NodeConfig
from parties.serving import http
from parties.serving.client import SERVE_FILE
from parties.serving.contributor import Contributor
from parties.serving.scorer import Scorer, load_models
from parties.serving.tally import Tally
from parties.transport import control_pb2_grpc as pb_grpc
from parties.transport.rpc import serve as grpc_serve
from parties.transport.servicers import ScoringServicer
from protocols.errors import SpecError

log = logging.getLogger("safehouse.serving")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 0  # the contributor's gRPC port
    http_port: int = 0
    models: tuple[str, ...] = ()  # NAME or NAME:VERSION; empty: every model this party is label owner of
    dataset: str | None = None  # the label owner's table to look firms up in
    reasons: int = 3
    clients: tuple[str, ...] = ()  # identities allowed to call POST /score; empty: this party's own


def serve_file(config: NodeConfig) -> Path:
    return config.party_home.root / SERVE_FILE


def run(config: NodeConfig, options: ServeOptions) -> int:
    signer = keys.party_signer(config.home, config.party, config.key_dir)
    tally = Tally(AuditLog(config.party_home.root / SERVING_AUDIT_FILE, signer), "scoring service")
    tally.start()
    contributor = Contributor(config, tally)
    served = contributor.preload()
    models = load_models(config, list(options.models) or None, options.dataset)
    if not served and not models:
        raise SpecError(f"party {config.party!r} holds no model part to serve (train a model first)")
    grpc_server = http_server = scorer = None
    doc: dict[str, Any] = {"party": config.party, "pid": os.getpid(), "started": time.time(), "contributes": served}
    if served:
        grpc_server, port = grpc_serve(
            lambda s: pb_grpc.add_ScoringServicer_to_server(ScoringServicer(contributor), s),
            options.host, options.port, config.tls)  # fmt: skip
        doc["grpc"] = f"{options.host}:{port}"
        if federation.publish_local_scoring(config.federation_file or config.home.root / federation.FILE,
                                            config.party, doc["grpc"]):  # fmt: skip
            log.info("local federation: %s's scoring address recorded", config.party)
    if models:
        scorer = Scorer(config, tally, models, options.reasons)
        own = config.federation().party(config.party).identity if config.secure else config.party
        http_server = http.start(options.host, options.http_port, config.tls, scorer, set(options.clients) or {own})
        scheme = "https" if config.secure else "http"
        doc["http"] = f"{scheme}://{options.host}:{http_server.server_address[1]}"
        doc["models"] = scorer.loaded()
    write_atomic(serve_file(config), json.dumps(doc, indent=1))
    log.info("scoring service of %s: %s", config.party, json.dumps(doc))
    _wait_for_signal()
    log.info("scoring service of %s stopping", config.party)
    serve_file(config).unlink(missing_ok=True)
    if http_server is not None:
        http_server.shutdown()
    if scorer is not None:
        scorer.close()
    if grpc_server is not None:
        grpc_server.stop(grace=1).wait()
    tally.close()
    return 0


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
