"""Benchmarks for the CDS service: `python -m bench.run` (see README, "Benchmarks")."""
