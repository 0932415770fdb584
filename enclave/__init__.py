"""Safehouse enclave: what every role shares inside its own domain.

Home directory layout, errors, USCC codes, dataset schemas, job specs, the
synthetic city, MLflow tracking, the local cluster launcher and the CLI.
"""
