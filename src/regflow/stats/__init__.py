"""Statistics in float64: least squares, streaming moment sweeps, fit summaries, distributions."""
