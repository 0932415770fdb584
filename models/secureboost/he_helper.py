"""A label owner's HE helper process: one key pair, then encryptions of zero at idle priority.

Run by path (``python -P he_helper.py SCHEMA BITS CHUNK PARENT_PID``) by
:class:`models.secureboost.he.Ahead`, never imported by the engine; it imports
only HEU, NumPy and the standard library, so it starts in a fraction of a
second. It writes frames to stdout (``tag``, 8-byte big-endian length,
payload):

* ``K``: the key pair it generated with HEU: the public key, the secret key
  and the scheme's plaintext bits (decimal), each after its length on 8
  bytes. Several helpers race; the label owner keeps the first key and kills
  the others. HEU's OU key generation draws fresh random candidates until its
  prime ``p`` passes (rejection sampling), so which helper wins depends on how
  many draws each needed, not on the key that came out (bar a negligible bias
  from the lengths of the prime searches inside a draw).
* ``Z``: a row count on 8 bytes and HEU's serialised ciphertexts of that many
  encryptions of zero under that key, each with fresh randomness. Once the key
  is sent, the process drops to ``SCHED_IDLE`` (every thread), so it computes
  only on cores nobody else wants; the pipe blocks it when the label owner
  holds enough.
* ``E``: an error's text, then exit.

It dies with the label owner's process (``PR_SET_PDEATHSIG``; a write to a
closed stdout ends it too) and runs in a session of its own, so that idle
priority holds against other processes' scheduler groups. It is the label
owner's own process: nothing it holds leaves the label owner's domain.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import IO

_OUT: list[IO[bytes]] = []  # the frames' stream, set by main()


def _frame(tag: bytes, payload: bytes) -> None:
    _OUT[0].write(tag + len(payload).to_bytes(8, "big") + payload)
    _OUT[0].flush()


def _detach(parent: int) -> None:
    """Die with the label owner's process; then a session (and so a scheduler autogroup) of its own.

    Linux shares CPU between autogroups before it looks at a task's policy: in
    the label owner's group an idle task would still take that group's share
    from a passive party on the same host. Its own group, at nice 19, does not.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the label owner is already gone
        os._exit(0)
    with contextlib.suppress(OSError):
        os.setsid()


def _idle() -> None:
    """Every thread to SCHED_IDLE (threads made later inherit it) and its autogroup to nice 19, or nice 19."""
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text("19")
    if not hasattr(os, "SCHED_IDLE"):
        os.nice(19)
        return
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that has just ended
            os.sched_setscheduler(int(tid), os.SCHED_IDLE, os.sched_param(0))


def main(schema: str, bits: int, chunk: int, parent: int) -> None:
    """Generate a key pair, send it, then send chunks of encryptions of zero until stdout closes."""
    _OUT.append(os.fdopen(os.dup(1), "wb"))  # frames only: what libraries print on fd 1 goes to stderr
    os.dup2(2, 1)
    _detach(parent)
    import numpy as np
    from heu import numpy as hnp
    from heu import phe

    kit = hnp.setup(getattr(phe.SchemaType, schema), bits)
    plain_bits = int(str(kit.public_key().plaintext_bound())).bit_length() - 1  # as he.plaintext_bits
    fields = (bytes(kit.public_key().serialize()), bytes(kit.secret_key().serialize()), str(plain_bits).encode())
    _frame(b"K", b"".join(len(f).to_bytes(8, "big") + f for f in fields))
    encryptor, encoder = kit.encryptor(), phe.BigintEncoderParams()
    zeros = kit.array(np.zeros((chunk, 1), dtype=object), encoder)
    _idle()  # threads HEU starts later inherit it from the thread that starts them
    while True:
        _frame(b"Z", chunk.to_bytes(8, "big") + bytes(encryptor.encrypt(zeros).serialize()))


if __name__ == "__main__":
    try:
        main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    except (BrokenPipeError, KeyboardInterrupt):
        os._exit(0)
    except Exception:
        with contextlib.suppress(OSError, IndexError):
            _frame(b"E", traceback.format_exc().encode()[-4000:])
        os._exit(1)
