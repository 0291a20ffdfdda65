"""Query files: loaded by name, documented by their header, parameters checked, errors carry the query name."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from neurflow_graph.errors import QueryError, StoreError
from neurflow_graph.store import queries
from neurflow_graph.store.connection import Connection


@pytest.mark.parametrize("name", queries.available())
def test_every_query_file_loads_with_a_documenting_header(name: str) -> None:
    query = queries.load(name)
    assert query.statements
    assert "Parameters:" in query.header
    assert "Example:" in query.header or name == "schema"
    for param in query.parameters:
        assert f"${param}" in query.header, f"{name}: ${param} is not documented in the header"


def test_write_queries_declare_their_row_layout() -> None:
    for name in queries.available():
        query = queries.load(name)
        if "rows" in query.parameters:
            assert query.row_columns, name
            assert "UNWIND $rows AS row" in query.statements[0], name


def test_missing_and_unused_parameters_fail_with_the_file_name() -> None:
    query = queries.load("run_status")
    with pytest.raises(QueryError, match=r"run_status\.cypher: missing parameter\(s\) \$run_id"):
        query.check({})
    with pytest.raises(QueryError, match=r"run_status\.cypher: unused parameter\(s\) \$extra"):
        query.check({"run_id": "x", "extra": 1})
    query.check({"run_id": "x"})


def test_unknown_query_name() -> None:
    with pytest.raises(QueryError, match="unknown query 'no_such_query'"):
        queries.load("no_such_query")
    with pytest.raises(QueryError, match="not a lowercase file stem"):
        queries.load("../etc/passwd")


def test_parameters_inside_strings_and_comments_do_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sample.cypher").write_text(
        "// A sample. Parameters: $a.\n// Writes: false\n// Example: run(d, db, 'sample', a=1)\n"
        "MATCH (n {name: '$not_a_param'}) // $nor_this\nWHERE n.x = $a /* $nor_that */\nRETURN n;\n"
        'RETURN "a;b" AS s, $a AS a\n'
    )
    (tmp_path / "bare.cypher").write_text("RETURN 1\n")
    monkeypatch.setenv(queries.CYPHER_DIR_ENV, str(tmp_path))
    query = queries.load("sample")
    assert query.parameters == {"a"}
    assert len(query.statements) == 2
    assert query.statement_parameters == (frozenset({"a"}), frozenset({"a"}))
    with pytest.raises(QueryError, match="bare.cypher: the file must open with a // header"):
        queries.load("bare")


def test_the_header_declares_whether_a_file_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`// Writes: true|false` decides; a file without it, or declaring false while it writes, is refused."""
    files = {
        "reads": "// Reads. Parameters: none.\n// Writes: false\nMATCH (n) RETURN count(n) AS n\n",
        "merges": "// Merges. Parameters: none.\n// Writes: true\nMERGE (n:X {id: 1}) RETURN n.id AS id\n",
        "undeclared": "// Undeclared. Parameters: none.\nMATCH (n) RETURN count(n) AS n\n",
        "lies": "// Lies. Parameters: none.\n// Writes: false\nMATCH (n) SET n.x = 1 RETURN count(n) AS n\n",
        "string": "// A literal. Parameters: none.\n// Writes: false\nRETURN 'CREATE (x)' AS text\n",
    }
    for name, text in files.items():
        (tmp_path / f"{name}.cypher").write_text(text)
    monkeypatch.setenv(queries.CYPHER_DIR_ENV, str(tmp_path))
    assert (queries.load("reads").writes, queries.load("merges").writes, queries.load("string").writes) == (
        False, True, False)
    with pytest.raises(QueryError, match=r"undeclared.cypher: the header must hold one line '// Writes: true'"):
        queries.load("undeclared")
    with pytest.raises(QueryError, match=r"lies.cypher: declares 'Writes: false' but holds SET"):
        queries.load("lies")


def test_every_shipped_file_declares_writes_as_its_code_does() -> None:
    for name in queries.available():
        query = queries.load(name)
        writer_file = name.startswith(("write_", "delete_", "schema_version_write")) or name == "schema"
        assert query.writes == writer_file, name


def test_row_lists_follow_the_declared_layout() -> None:
    query = queries.load("write_group_edges")
    rows = [{"child": "a", "parent": "b", "weight": 0.5, "n_edges": 2, "ignored": 1}]
    assert query.row_lists(rows) == [["a", "b", 0.5, 2]]
    with pytest.raises(QueryError, match="write_group_edges.cypher: a row lacks column 'n_edges'"):
        query.row_lists([{"child": "a", "parent": "b", "weight": 0.5}])


def test_row_lists_of_a_table_follow_the_declared_layout() -> None:
    query = queries.load("write_group_edges")
    table = pa.table({"n_edges": [2, 3], "weight": [0.5, -1.0], "parent": ["b", "d"], "child": ["a", "c"], "x": [0, 0]})
    assert query.row_lists(table) == [["a", "b", 0.5, 2], ["c", "d", -1.0, 3]]
    with pytest.raises(QueryError, match="write_group_edges.cypher: the rows lack column 'n_edges'"):
        query.row_lists(table.drop_columns(["n_edges"]))


def test_row_parameters_stay_out_of_the_driver_debug_log(
    conn: Connection, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver formats every RUN's parameters for its debug log; rows appear there only as their length."""
    (tmp_path / "probe.cypher").write_text(
        "// Counts rows. Parameters: $rows.\n// Writes: false\n// Example: run(d, db, 'probe', rows=[['a', 1]])\n"
        "UNWIND $rows AS row WITH collect(row[0]) AS names RETURN size(names) AS n, names[0] AS first\n"
    )
    monkeypatch.setenv(queries.CYPHER_DIR_ENV, str(tmp_path))
    rows = [[f"secret-row-{i}", i] for i in range(500)]
    with caplog.at_level(logging.DEBUG, logger="neo4j"):
        got = queries.run_cypher(conn.driver, conn.database, "probe", rows=rows)
    assert got == [{"n": 500, "first": "secret-row-0"}]
    runs = [r.getMessage() for r in caplog.records if " C: RUN " in r.getMessage()]
    assert runs and "<list of 500>" in runs[-1]
    assert "secret-row" not in caplog.text


def test_run_returns_rows_and_tables(conn: Connection) -> None:
    assert queries.run_cypher(conn.driver, conn.database, "list_runs") == []
    table = queries.run_table(conn.driver, conn.database, "schema_version_read", key="neurflow-graph")
    assert table.column_names == ["version", "written_by", "present"]


def test_driver_errors_name_the_query_and_parameter_names(conn: Connection) -> None:
    from neurflow_graph.store import ensure_schema

    ensure_schema(conn.driver, conn.database)
    rows = [["r/p0", 0, 0, "sha", 1.0, 0, 0, 1, 1, None]]
    conn.run("write_patches", run_id="r", rows=rows)
    with pytest.raises(StoreError) as err:
        conn.run("write_patches", run_id="r", rows=rows)  # the unique constraint on Patch.id refuses it
    message = str(err.value)
    assert "query 'write_patches' (parameters: rows, run_id)" in message
    assert "\n" not in message


def test_a_write_that_loses_a_conflict_is_tried_again_at_once(conn: Connection) -> None:
    """ArcadeDB refuses a commit whose node another transaction changed meanwhile; the write runs again."""
    conn.driver.execute_query("CREATE (:Probe {id: 1, v: 0})", database_=conn.database)
    slow_bump = (  # reads v, then sums 10M numbers (about a second) before its commit
        "MATCH (x:Probe {id: 1}) SET x.v = x.v + 1 WITH x UNWIND range(1, $n) AS i WITH x, sum(i) AS s RETURN x.v AS v"
    )

    def other_writer() -> None:
        time.sleep(0.2)
        conn.driver.execute_query("MATCH (x:Probe {id: 1}) SET x.v = x.v + 100", database_=conn.database)

    other = threading.Thread(target=other_writer)
    other.start()
    result = queries._retried_at_once(conn.driver, conn.database, slow_bump, {"n": 10_000_000}, 2)
    other.join()
    assert result is not None and result.records[0]["v"] == 101  # the second try saw the other write
    final = conn.driver.execute_query("MATCH (x:Probe {id: 1}) RETURN x.v AS v", database_=conn.database)
    assert final.records[0]["v"] == 101


def test_retried_writes_refuse_what_the_managed_path_refuses(conn: Connection) -> None:
    from neurflow_graph.store import ensure_schema

    ensure_schema(conn.driver, conn.database)
    params = {"run_id": "r", "rows": [["r/p9", 9, 0, "sha", 1.0, 0, 0, 1, 1, None]]}
    got = queries.execute(conn.driver, conn.database, "write_patches", params, retries_at_once=3)
    assert got.records[0]["written"] == 1
    with pytest.raises(StoreError, match=r"^query 'write_patches' \(parameters: rows, run_id\) failed"):
        queries.execute(conn.driver, conn.database, "write_patches", params, retries_at_once=3)
    count = conn.driver.execute_query("MATCH (p:Patch {id: 'r/p9'}) RETURN count(p) AS n", database_=conn.database)
    assert count.records[0]["n"] == 1
