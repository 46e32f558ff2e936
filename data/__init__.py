"""Example data that ships with regflow: the tutorial's seed.csv."""
