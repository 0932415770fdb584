"""The party node: one long-running process per party, inside its domain.

It answers the coordinator's control plane, checks each job against what it
has installed and holds, starts one SecretFlow worker per job, reports
progress, releases only declared outputs, and cleans up the worker and its
ports after success, failure or cancel.
"""
