"""Real registries for tests and benchmarks (see registry_lab.py and images.py)."""
