"""The per-job worker: a SecretFlow production-mode process inside one party.

A node starts one worker per job with a ``worker.json`` in the job directory.
The worker joins the other parties' workers over SecretFlow links, runs the
installed job program, and leaves ``result.json`` (what it may release) or
``error.json`` (a sanitised reason) behind. Progress goes to ``events.jsonl``.
"""
