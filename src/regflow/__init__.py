"""regflow: a Prefect pipeline that trains linear-regression models into a model registry."""

__version__ = "0.1.0"
