"""Benchmarks of the shipped process set (see docs/performance.md)."""
