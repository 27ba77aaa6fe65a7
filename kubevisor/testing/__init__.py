"""Test support: embedded server fixtures, per-test namespaces, waiters."""

__all__: list[str] = []
