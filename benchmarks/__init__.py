"""Reproducible performance scenarios: ``python -m benchmarks <name>`` (``make bench``)."""
