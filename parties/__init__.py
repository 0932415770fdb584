"""Deployable roles: ``node`` (one per party), ``coordinator``, and ``worker``
(the SecretFlow process a node starts for each job)."""
