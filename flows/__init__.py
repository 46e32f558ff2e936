"""Prefect flows: orchestration only (training.py: train, scoring.py: score)."""
