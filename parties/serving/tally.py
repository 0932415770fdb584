"""Online calls in the audit trail: one entry per minute, caller and model, with counts only.

A scoring service handles many calls a minute; an entry per call would put
every firm a bank looked at into the trail, which other people read. So calls
are counted per (minute, caller, model, outcome) and one signed entry per
minute and (caller, model) is written when the minute is over, and on
shutdown. No entry carries a firm code.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from enclave.controls.audit import AuditLog

KIND = "online_scoring"
JOB_ID = "online"


@dataclass(frozen=True)
class Key:
    minute: int  # epoch seconds // 60
    caller: str
    model: str


class Tally:
    def __init__(self, log: AuditLog, role: str) -> None:
        self.log, self.role = log, role
        self._counts: dict[Key, Counter[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, caller: str, model: str, outcome: str) -> None:
        key = Key(int(time.time() // 60), caller, model)
        with self._lock:
            self._counts.setdefault(key, Counter())[outcome] += 1

    def flush(self, everything: bool = False) -> int:
        """Write the entries of every finished minute (all of them with ``everything``)."""
        now = int(time.time() // 60)
        with self._lock:
            done = sorted((k for k in self._counts if everything or k.minute < now), key=lambda k: k.minute)
            taken = [(k, self._counts.pop(k)) for k in done]
        for key, outcomes in taken:
            minute = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(key.minute * 60))
            self.log.append(KIND, JOB_ID, {"role": self.role, "minute": minute, "caller": key.caller,
                                           "model": key.model, "calls": sum(outcomes.values()),
                                           "outcomes": dict(sorted(outcomes.items()))})  # fmt: skip
        return len(taken)

    def start(self, every: float = 5.0) -> None:
        def loop() -> None:
            while not self._stop.wait(every):
                self.flush()

        self._thread = threading.Thread(target=loop, name="audit-tally", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush(everything=True)
