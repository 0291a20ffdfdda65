"""The command line: every command module, parsing options and calling the library (nothing more)."""

from neurflow_graph.cli.main import main

__all__ = ["main"]
