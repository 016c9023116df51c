"""Benchmarks of arrayq's hot paths, each beside the naive way; `python -m bench [--quick]`."""
