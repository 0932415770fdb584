"""The label owner's HE helper processes: the raced key, encryptions of zero made ahead, and their end.

Real helper processes (``models/secureboost/he_helper.py``) and real HEU;
the rows' ciphertexts are decrypted back, and no helper may outlive its owner.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from models.secureboost import he
from models.secureboost.he import Ahead, KeyOwner

KEY_BITS = 1024  # fast to generate; the helpers' logic does not depend on the size


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _wait_gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _wait_held(ahead: Ahead, rows: int, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while ahead.count < rows:
        if time.monotonic() > end:
            raise AssertionError(f"the helper made {ahead.count} encryptions of zero in {seconds} s, wanted {rows}")
        time.sleep(0.05)


def _decrypt(owner: KeyOwner, blob: bytes) -> list[int]:
    from heu import numpy as hnp

    return [int(v) for v in owner.decryptor.decrypt(hnp.CiphertextArray.load_from(blob)).to_numpy().ravel()]


def test_the_raced_key_and_the_zeros_made_ahead_encrypt_every_row_once() -> None:
    ahead = Ahead("OU", KEY_BITS, capacity=3000, racers=2)
    owner = KeyOwner("OU", KEY_BITS, ahead=ahead)
    try:
        losers = [p for p in ahead.procs if p.poll() is not None]
        assert len(losers) == 1, "the helper that lost the race is killed"
        assert owner.plaintext_bits() == he.plaintext_bits(owner.kit.public_key())
        _wait_held(ahead, 3000)
        values = np.array([(-1) ** i * (i * 7919 + 3) for i in range(2500)], dtype=object)
        blob = owner.encrypt_rows(values)
        assert _decrypt(owner, blob) == [int(v) for v in values]
        assert owner.counts.encrypt == 2500 and owner.counts.ahead == 2500
        # the rest of the last chunk went back; the next call takes it, then encrypts the rows not covered
        held = ahead.count  # the helper may add more before the next call: at least these are taken
        rows = held + 10 * he.CHUNK
        more = np.arange(rows, dtype=object)
        assert _decrypt(owner, owner.encrypt_rows(more)) == list(range(rows))
        assert held <= owner.counts.ahead - 2500 < rows
        # equal plaintexts, distinct ciphertexts: no encryption of zero is handed out twice
        from heu import numpy as hnp

        same = hnp.CiphertextArray.load_from(owner.encrypt_rows(np.zeros(64, dtype=object)))
        assert len({bytes(same[[i]].serialize()) for i in range(64)}) == 64
    finally:
        owner.close()
    assert _wait_gone([p.pid for p in ahead.procs]) == []


@pytest.mark.parametrize("how", ["helper fails", "no process starts"])
def test_without_helpers_the_key_is_made_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str) -> None:
    if how == "helper fails":
        broken = tmp_path / "he_helper.py"
        broken.write_text("raise SystemExit('no HEU here')\n")
        monkeypatch.setattr(he, "HELPER", broken)
    else:
        monkeypatch.setattr(he.sys, "executable", str(tmp_path / "no-such-python"))
    ahead = Ahead("OU", KEY_BITS, capacity=100, racers=2)
    owner = KeyOwner("OU", KEY_BITS, ahead=ahead)
    try:
        assert any(w in ahead.error for w in ("ended", "no HEU", "cannot start an HE helper")), ahead.error
        assert owner.ahead is not None and owner.ahead.closed
        values = np.arange(50, dtype=object)
        assert _decrypt(owner, owner.encrypt_rows(values)) == list(range(50))
        assert owner.counts.ahead == 0
    finally:
        owner.close()


def test_a_stuck_helper_times_out_and_the_key_is_made_in_process(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:  # fmt: skip
    stuck = tmp_path / "he_helper.py"
    stuck.write_text("import time\ntime.sleep(600)\n")
    monkeypatch.setattr(he, "HELPER", stuck)
    ahead = Ahead("OU", KEY_BITS, capacity=100, racers=2, key_timeout=1.0)
    started = time.monotonic()
    owner = KeyOwner("OU", KEY_BITS, ahead=ahead)
    try:
        assert 1.0 <= time.monotonic() - started < 60, "the key wait neither timed out nor stopped waiting"
        assert "within 1 s" in ahead.error, ahead.error
        assert _wait_gone([p.pid for p in ahead.procs]) == [], "a stuck helper was left running"
        assert _decrypt(owner, owner.encrypt_rows(np.arange(20, dtype=object))) == list(range(20))
    finally:
        owner.close()


def test_a_helper_reports_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    ahead = Ahead("NoSuchSchema", KEY_BITS, capacity=100, racers=1)
    assert ahead.key() is None
    assert "NoSuchSchema" in ahead.error, ahead.error


def test_helpers_die_with_their_owner() -> None:
    code = (
        "import sys, time\n"
        "from models.secureboost.he import Ahead, KeyOwner\n"
        f"a = Ahead('OU', {KEY_BITS}, capacity=10**6, racers=2)\n"
        f"o = KeyOwner('OU', {KEY_BITS}, ahead=a)\n"
        "print(' '.join(str(p.pid) for p in a.procs), flush=True)\n"
        "time.sleep(600)\n"
    )
    root = Path(__file__).resolve().parents[1]
    owner = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        line = owner.stdout.readline() if owner.stdout else ""
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2, f"the owner printed {line!r}"
        assert len([p for p in pids if _alive(p)]) == 1, "one helper won and goes on making zeros"
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert _wait_gone(pids) == [], "a helper outlived its owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
