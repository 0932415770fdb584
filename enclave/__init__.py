"""The safe house every role shares inside its own domain.

``home`` (paths and typed settings), ``files`` (atomic writes, hashes),
``fields`` (typed reading of specs), ``jobspec`` (the job envelope), ``data/``
(schemas and the validating loader, USCC, import, split, the synthetic city)
and ``controls/`` (policy, consent, keys, audit, output gate,
desensitisation). It knows no role, no gRPC and no MLflow.
"""
