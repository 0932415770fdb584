"""The deployable roles and everything a person touches.

``node/`` (a party's node), ``coordinator/``, ``worker/`` (the per-job
SecretFlow process), ``transport/`` (links between roles), ``client/`` (API,
workflows, local launcher, demo), ``tracking`` (MLflow), ``records`` (job
stores), ``procs`` (processes and ports) and ``cli`` (one entry point).
"""
