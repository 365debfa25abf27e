"""Benchmarks against real lab registries (tests/lab/registry_lab.py); results in BENCHMARKS.md."""
