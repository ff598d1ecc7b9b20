"""Benchmarks of the metadata engine (run them as modules: ``python -m bench.<name>``)."""
