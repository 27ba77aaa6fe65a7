"""The ``kubevisor`` command line."""

from __future__ import annotations

import click

from kubevisor import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubevisor")
def main() -> None:
    """Kubernetes operators in Python, built the way OTP builds systems."""
