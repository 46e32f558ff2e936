"""Prefect tasks, one module per stage: ingest, validate, gate, train, evaluate, publish."""
