"""The coordinator: takes job specs, assigns job ids, hands out the cluster
layout, drives every node through the job and records it in MLflow.

It never receives rows: only states, fingerprints and declared outputs.
"""
