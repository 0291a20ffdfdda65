"""The query library without a store: headers, defaults, parameter errors, tables, typed rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurflow_graph.cli.query import parse_param
from neurflow_graph.errors import QueryError
from neurflow_graph.query import (
    BiasPath,
    format_table,
    query_info,
    read_queries,
    run_query,
    to_table,
    with_defaults,
)
from neurflow_graph.store import queries

MINE = ("bias_paths", "circuit_edges", "class_info", "circuit_groups", "circuit_of_class", "compare_run_edges",
        "compare_run_groups", "group_exemplars", "interventions", "layer_groups", "list_classes", "neuron_roles",
        "run_provenance", "shared_groups", "shared_neurons")


@pytest.mark.parametrize("name", MINE)
def test_each_query_documents_what_it_answers_its_parameters_and_an_example(name: str) -> None:
    info = query_info(name)
    assert "Parameters:" in info.header and "Returns:" in info.header and "Example:" in info.header
    for p in info.parameters:
        assert f"${p}" in info.header.split("Returns:")[0], f"{name}: ${p} is not documented"
    example = info.header.split("Example:")[1]
    assert f'"{name}"' in example
    for p in info.required:
        assert f"{p}=" in example, f"{name}: the example does not pass {p}"


def test_write_files_are_not_offered_to_query() -> None:
    names = read_queries()
    assert set(MINE) <= set(names)
    assert "write_interventions" not in names and "schema" not in names
    assert queries.load("write_interventions").row_columns == ("id", "group", "props")


def test_defaults_fill_optional_parameters_only() -> None:
    assert with_defaults("circuit_edges", {"class_id": "digits/3"}) == \
        {"class_id": "digits/3", "run_id": None, "top_n": None}
    assert with_defaults("compare_run_edges", {"run_a": "a", "run_b": "b"})["tolerance"] == 1e-9
    assert with_defaults("bias_paths", {"class_id": "x", "limit": 3})["limit"] == 3
    with pytest.raises(QueryError, match=r"query 'bias_paths' needs parameter class_id \(--param class_id=…\); "
                                         r"its parameters: class_id, limit \(default 20\)"):
        with_defaults("bias_paths", {})
    with pytest.raises(QueryError, match="query 'list_classes' has no parameter class_id; its parameters: none"):
        with_defaults("list_classes", {"class_id": "x"})


def test_unknown_query_lists_the_available_ones() -> None:
    with pytest.raises(QueryError) as err:
        query_info("circuit")
    assert str(err.value).startswith("'circuit' is not a query; available queries: bias_paths, circuit_edges")
    with pytest.raises(QueryError, match="'write_neurons' writes to the store"):
        query_info("write_neurons")


def test_run_query_is_the_choke_point() -> None:
    calls = []

    class Fake:
        def run(self, name, /, **params):
            calls.append((name, params))
            return [{"ok": 1}]

    assert run_query(Fake(), "shared_neurons", layer="conv2") == [{"ok": 1}]
    assert calls == [("shared_neurons", {"layer": "conv2", "min_classes": 2, "limit": 100})]


def test_bad_defaults_line_fails_with_the_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.cypher").write_text("// Bad.\n// Parameters: $a.\n// Defaults: $b = 1\n// Writes: false\n"
                                         "// Example: x\nRETURN $a AS a\n")
    monkeypatch.setenv(queries.CYPHER_DIR_ENV, str(tmp_path))
    with pytest.raises(QueryError, match=r"bad.cypher: Defaults names \$b, which the query does not use"):
        query_info("bad")


def test_defaults_are_json_values_lists_and_commas_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lists.cypher").write_text(
        '// Lists. Parameters: $names, $where, $limit, $text.\n'
        '// Defaults: $names = ["a, b", "c"], $where = {"x": [1, 2]}, $limit = 2\n// Defaults: $text = "p, q"\n'
        "// Writes: false\n// Example: x\nRETURN $names AS n, $where AS w, $limit AS l, $text AS t\n")
    (tmp_path / "two.cypher").write_text("// Two values.\n// Defaults: $a = 1 2\n// Writes: false\nRETURN $a AS a\n")
    monkeypatch.setenv(queries.CYPHER_DIR_ENV, str(tmp_path))
    assert query_info("lists").defaults == {"names": ["a, b", "c"], "where": {"x": [1, 2]}, "limit": 2, "text": "p, q"}
    with pytest.raises(QueryError, match=r"two.cypher: default of \$a is not one JSON value"):
        query_info("two")


@pytest.mark.parametrize("text, expected", [
    ("class_id=digits/3", ("class_id", "digits/3")),
    ("top_n=2", ("top_n", 2)),
    ("min_jaccard=0.25", ("min_jaccard", 0.25)),
    ("run_id=null", ("run_id", None)),
    ("source= conv2/g4", ("source", " conv2/g4")),
    ("text=a=b", ("text", "a=b")),
])
def test_param_values_are_json_when_they_parse(text: str, expected: tuple) -> None:
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["class_id", "=3", "two words=1"])
def test_bad_params_are_refused(text: str) -> None:
    with pytest.raises(QueryError, match="--param expects KEY=VALUE"):
        parse_param(text)


def test_format_table() -> None:
    rows = [{"name": "conv2/g4", "weight": 11.6826, "groups": ["a", "b"], "label": None},
            {"name": "conv3/g0", "weight": -0.7263, "groups": [], "label": "x" * 80, "extra": True}]
    lines = format_table(rows, width=20).splitlines()
    assert lines[0].split() == ["name", "weight", "groups", "label", "extra"]
    assert "11.68" in lines[2] and "[a, b]" in lines[2]
    assert "-0.7263" in lines[3] and "x" * 19 + "…" in lines[3] and "true" in lines[3]
    assert lines[-1] == "(2 rows)"
    assert format_table([]) == "(no rows)"


def test_to_table_flattens_typed_rows() -> None:
    path = BiasPath("r", "conv2/g0", ("conv2/g0", "fc/g0"), (0.5,), 0.5, 0.5, -0.69, 1)
    table = to_table([path, path])
    assert table.num_rows == 2 and table.column("groups").to_pylist()[0] == ["conv2/g0", "fc/g0"]
