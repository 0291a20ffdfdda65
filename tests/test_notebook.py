"""docs/notebooks/quickstart.ipynb executes cell by cell in a real Jupyter kernel, on its own embedded store."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from neurflow_graph.store import server
from neurflow_graph.store.connection import STORE_ENV

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs_every_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    store = tmp_path / "store"
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEURFLOW_GRAPH_DATA_DIR", str(store))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws figures inline
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute()  # raises CellExecutionError, naming the cell, when any cell fails
    finally:
        server.stop(store)
    assert server.status(store).state == "stopped"
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    shown = [o["data"] for o in outputs if o.get("output_type") in ("execute_result", "display_data")]
    assert any("<iframe srcdoc=" in d.get("text/html", "") for d in shown), "the circuit was not drawn inline"
    assert sum("</table>" in d.get("text/html", "") for d in shown) >= 3, "the DataFrames were not shown"
    assert any("image/png" in d for d in shown), "the masking plot was not drawn"
