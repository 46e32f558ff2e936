"""The dask engine: per-partition work and the merging of its results."""
