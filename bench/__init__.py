"""Benchmarks: each prints its figures beside a baseline."""
