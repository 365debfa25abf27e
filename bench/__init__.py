"""Benchmarks of cip against peers and raw baselines; see BENCHMARKS.md."""
