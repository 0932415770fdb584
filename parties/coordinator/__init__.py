"""The coordinator: takes job specs, assigns job ids, hands out the cluster
layout, drives every node through the job, records it in MLflow, and keeps
its job records in a durable store. It never receives rows: only states,
fingerprints and the outputs a job type declares and each node releases.
"""
