"""``python -m neurflow_graph.cli``: the same entry point as the ``neurflow-graph`` script."""

from neurflow_graph.cli.main import main

main()
