"""pandera schemas for the input data and the typed results that pass between tasks."""
