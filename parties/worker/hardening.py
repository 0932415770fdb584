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
import pickle
import types
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


def loads(data: bytes, /, *, filter_type: Any = None, **_: Any) -> Any:
    """``secure_pickle.loads`` as SecretFlow calls it; ``filter_type`` is ignored on purpose."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("a peer message must be bytes")
    return StrictUnpickler(io.BytesIO(bytes(data))).load()


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


def install() -> None:
    install_allow_list()
    sanitise_remote_errors()
    from parties.worker import spu_compile

    spu_compile.install()
