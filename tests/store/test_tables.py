"""Every `fetch_*` answer as a pyarrow Table and a pandas DataFrame, compared with its typed records (real store)."""

from __future__ import annotations

import dataclasses
import html
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurflow_graph.errors import ConfigError, MissingDependency
from neurflow_graph.query import (
    ClassCircuit,
    Records,
    fetch_bias_paths,
    fetch_class_circuit,
    fetch_classes,
    fetch_exemplars,
    fetch_interventions,
    fetch_layer_groups,
    fetch_neuron_roles,
    fetch_run_comparison,
    fetch_run_info,
    fetch_shared_groups,
    fetch_shared_neurons,
)
from neurflow_graph.render.circuit import render_circuit_html
from neurflow_graph.store import connect, write_run_graph
from neurflow_graph.store.connection import Connection


@pytest.fixture(scope="module")
def conn(data_dir: Path, digits_bundle_dir: Path, digits_bundle_dirs) -> Iterator[Connection]:
    """One database holding the real runs of digits 3 and 5."""
    with connect(data_dir, database="tables") as connection:
        for path in (digits_bundle_dir, digits_bundle_dirs(5)):
            write_run_graph(connection.driver, connection.database, path)
        yield connection


def expected(value: Any) -> Any:
    """What a record's field should read back as from a table: tuples as lists, paths as strings."""
    if dataclasses.is_dataclass(value):
        return {f.name: expected(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    return str(value) if isinstance(value, Path) else value


def from_pandas(value: Any) -> Any:
    """A DataFrame cell as plain Python: arrays as lists, missing values (NaN, None) as None."""
    if isinstance(value, np.ndarray):
        return [from_pandas(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [from_pandas(v) for v in value]
    if isinstance(value, dict):
        return {k: from_pandas(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def answers(conn: Connection) -> dict[str, tuple[Any, str | None, list[Any]]]:
    """Every fetch helper's answer on the store: (answer, part, the records its table must hold)."""
    circuit = fetch_class_circuit(conn, "digits/3")
    run3 = circuit.run_id
    group = next(g for g in circuit.groups if g.exemplars)
    neuron = next(n for g in circuit.groups if not g.is_root for n in g.neurons)
    layer = next(g.layer for g in circuit.groups if not g.is_root)
    comparison = fetch_run_comparison(conn, run3, fetch_class_circuit(conn, "digits/5").run_id, min_jaccard=0.0)
    run = fetch_run_info(conn, run3)
    found = {
        "classes": fetch_classes(conn),
        "bias_paths": fetch_bias_paths(conn, "digits/3", limit=5),
        "shared_groups": fetch_shared_groups(conn, min_jaccard=0.0),
        "shared_neurons": fetch_shared_neurons(conn, layer, min_classes=1),
        "neuron_roles": fetch_neuron_roles(conn, neuron),
        "exemplars": fetch_exemplars(conn, group.id),
        "layer_groups": fetch_layer_groups(conn, "digits/3", layer),
        "interventions": fetch_interventions(conn, "digits/3"),
    }
    out: dict[str, tuple[Any, str | None, list[Any]]] = {k: (v, None, list(v)) for k, v in found.items()}
    out |= {"circuit": (circuit, None, list(circuit.edges)),
            "circuit_groups": (circuit, "groups", list(circuit.groups)),
            "circuit_edges": (circuit, "edges", list(circuit.edges)), "run_info": (run, None, [run]),
            "comparison_groups": (comparison, "groups", list(comparison.groups)),
            "comparison_edges": (comparison, "edges", list(comparison.edges))}
    return out


def test_every_fetch_answer_converts_to_arrow_and_pandas_row_for_row(conn: Connection) -> None:
    found = answers(conn)
    assert all(isinstance(found[k][0], Records) for k in ("classes", "bias_paths", "exemplars", "interventions"))
    nonempty = [name for name, (_, _, records) in found.items() if records]
    assert {"classes", "bias_paths", "shared_groups", "exemplars", "circuit_groups", "comparison_edges"} \
        <= set(nonempty)
    for name, (answer, part, records) in found.items():
        row_type = type(records[0]) if records else answer.row_type
        columns = [f.name for f in dataclasses.fields(row_type)]
        table = answer.to_arrow(part)
        assert table.column_names == columns, name
        assert table.to_pylist() == [expected(r) for r in records], name
        frame = answer.to_pandas(part)
        assert list(frame.columns) == columns and len(frame) == len(records), name
        rows = [{k: from_pandas(v) for k, v in row.items()} for row in frame.to_dict("records")]
        assert rows == [from_pandas(expected(r)) for r in records], name


def test_without_pandas_to_pandas_names_it(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = fetch_bias_paths(conn, "digits/3", limit=2)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependency, match=r"to_pandas\(\) needs pandas, which is not installed; pip install"):
        paths.to_pandas()
    assert paths.to_arrow().num_rows == len(paths)


def test_a_circuit_names_its_parts_and_draws_itself_in_jupyter(conn: Connection) -> None:
    circuit = fetch_class_circuit(conn, "digits/3")
    assert isinstance(circuit, ClassCircuit)
    with pytest.raises(ConfigError, match=r"ClassCircuit has no part 'nodes'; parts: 'edges', 'groups'"):
        circuit.to_arrow("nodes")
    with pytest.raises(ConfigError, match=r"Run has no part 'edges'; parts: none"):
        fetch_run_info(conn, circuit.run_id).to_arrow("edges")
    shown = circuit._repr_html_()
    (srcdoc,) = re.findall(r'<iframe srcdoc="([^"]*)"', shown)
    assert html.unescape(srcdoc) == render_circuit_html(circuit)
