"""Benchmarks: each prints its figures as JSON."""
