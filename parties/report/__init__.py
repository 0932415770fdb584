"""Validation reports: one HTML page per registered model version, logged to its MLflow run."""
