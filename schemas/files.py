"""The names of the files in a run folder and a registry version."""

CARD_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
PREDICTIONS_FILE = "predictions.parquet"
QUARANTINE_FILE = "quarantine.csv"
