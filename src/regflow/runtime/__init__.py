"""Small runtime helpers: usable cores, fault-injection points, import-time tuning."""
