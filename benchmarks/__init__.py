"""Side-by-side benchmarks: regflow against what a user would otherwise write (`make bench`)."""
