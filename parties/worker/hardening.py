"""What a worker refuses from its peers, installed before SecretFlow starts.

SecretFlow 1.11 (pinned in ``pyproject.toml``) trusts its peers more than
Safehouse may, so the worker patches three places of it at start-up:

1. **Peer messages are unpickled against an exact allow-list.** Its brpc link
   unpickles every message with a blacklist that admits ``builtins.exec``, and
   its own whitelist mode admits any ``secretflow.*`` attribute, which dotted
   names escape. Here only the (module, name) pairs the job types need are
   resolved, and a dotted name never is.
2. **Errors sent to peers carry no local detail.** A failing device call sends
   its exception, message and all, to every peer; here the peer gets the
   exception's type (or a Safehouse error's public text) only.
3. **Every SPU node compiles its own program.** SecretFlow compiles a device
   function at one node and ships the executable to the other, which runs it
   on its shares unchecked; here each node compiles the same function itself,
   so no executable crosses a boundary (and none is on the allow-list).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import time
import types
from pathlib import Path
from typing import Any

from protocols.errors import SafehouseError

# Every class a joint job's peer messages hold: PYU transfers (numpy, pandas),
# SPU shares' metadata, HEU public keys and ciphertexts, and remote errors.
ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "slice"),
    ("builtins", "RuntimeError"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy", "float32"),
    ("numpy", "float64"),
    ("numpy", "int64"),
    ("numpy", "bool_"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.series", "Series"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("jax._src.api", "ShapeDtypeStruct"),
    ("secretflow.device.device.spu", "SPUValueMeta"),
    ("secretflow.device.device.spu", "SPUIOInfo"),
    ("secretflow.distributed.fed.exception", "FedRemoteError"),
    ("heu.phe", "PublicKey"),
    ("heu.numpy", "CiphertextArray"),
})  # fmt: skip


class RefusedPickle(pickle.UnpicklingError):
    """A peer's message named a class outside the allow-list."""


class StrictUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # A dotted name walks attributes (``os.system`` off any module): never resolve one.
        if "." in name or (module, name) not in ALLOWED:
            raise RefusedPickle(f"peer message refused: it names {module}.{name}, which is not on the allow-list")
        return super().find_class(module, name)


WIRE_LOG_ENV = "SAFEHOUSE_WIRE_LOG"  # set (to anything) to record the shape of every peer message
_wire_log: Path | None = None


def loads(data: bytes, /, *, filter_type: Any = None, **_: Any) -> Any:
    """``secure_pickle.loads`` as SecretFlow calls it; ``filter_type`` is ignored on purpose."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("a peer message must be bytes")
    obj = StrictUnpickler(io.BytesIO(bytes(data))).load()
    if _wire_log is not None:
        with _wire_log.open("a") as f:
            f.write(json.dumps({"t": time.time(), "bytes": len(data), "shape": shape_of(obj)}) + "\n")
    return obj


def shape_of(obj: Any, depth: int = 0) -> Any:
    """What a message holds, for the wire log: containers by key, arrays by dtype and shape, bytes by
    length, numbers and short strings by value (the log stays in this party's job directory)."""
    if depth > 6:
        return "..."
    if isinstance(obj, dict):
        return {str(k): shape_of(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [shape_of(v, depth + 1) for v in obj[:50]]
    if isinstance(obj, bytes | bytearray):
        return {"bytes": len(obj)}
    if isinstance(obj, bool | int | float) or (isinstance(obj, str) and len(obj) <= 64):
        return obj
    dtype, shape = getattr(obj, "dtype", None), getattr(obj, "shape", None)
    if dtype is not None and shape is not None:
        return {"type": type(obj).__name__, "dtype": str(dtype), "shape": [int(d) for d in shape]}
    return {"type": f"{type(obj).__module__}.{type(obj).__name__}"}


def install_allow_list() -> None:
    """Route the brpc link's receive path through ``loads``."""
    import cloudpickle
    from secretflow.distributed.fed.proxy.brpc_link import brpc_link
    from secretflow.utils import secure_pickle

    brpc_link.secure_pickle = types.SimpleNamespace(
        dumps=cloudpickle.dumps, loads=loads, FilterType=secure_pickle.FilterType
    )


def public_cause(e: BaseException) -> RuntimeError:
    """What a peer may learn of a local failure: a Safehouse error's public text, else its type."""
    return RuntimeError(e.public if isinstance(e, SafehouseError) else f"{type(e).__name__} (detail kept locally)")


def sanitise_remote_errors() -> None:
    from secretflow.distributed.fed.exception import FedRemoteError
    from secretflow.distributed.fed.proxy.brpc_link import brpc_link

    original = brpc_link.BrpcLinkProxy.send
    if getattr(original, "_safehouse", False):
        return

    def send(self: Any, dest_party: str, data: Any, seq_id: Any) -> Any:
        if isinstance(data, FedRemoteError) and data._cause is not None:
            data = FedRemoteError(data._src_party, public_cause(data._cause))
        return original(self, dest_party, data, seq_id)

    send._safehouse = True  # type: ignore[attr-defined]
    brpc_link.BrpcLinkProxy.send = send


def install(job_dir: Path | None = None) -> None:
    """Install every patch; with ``SAFEHOUSE_WIRE_LOG`` set, peer messages' shapes go to ``wire.jsonl``."""
    global _wire_log
    if job_dir is not None and os.environ.get(WIRE_LOG_ENV):
        _wire_log = job_dir / "wire.jsonl"
    install_allow_list()
    sanitise_remote_errors()
    from parties.worker import spu_compile

    spu_compile.install()
