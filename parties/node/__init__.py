"""The party node: one long-running process per party, inside its domain.

It answers the coordinator's control plane, checks each job against what it
has installed and holds (``checks``) and against its own policy, starts one
SecretFlow worker per job (``workers``), reports progress, releases only what
the job type declares and the policy grants, and cleans up the worker and its
files after success, failure or cancel. ``store`` keeps its job records.
"""
