"""The config stage: what a run is (its spec), the studies a config declares, and every check of a value."""
