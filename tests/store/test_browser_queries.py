"""What a user sees in Neo4j Browser on the embedded store: the README's graph queries draw real circuits, the
Browser style names labels and properties the graph has, and the commands say how to connect."""

from __future__ import annotations

import json
import re
from pathlib import Path

import neo4j.graph
import pytest
from click.testing import CliRunner

from neurflow_graph.cli.main import main
from neurflow_graph.query.library import run_query
from neurflow_graph.store import queries, server, write_run_graph
from neurflow_graph.store.connection import STYLE_FILE, Connection

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def two_classes(conn: Connection, digits_bundle_dir: Path, digits_bundle_dirs) -> tuple[Connection, str, str]:
    """A fresh database holding the real digits circuits of classes 3 and 8."""
    runs = []
    for bundle in (digits_bundle_dir, digits_bundle_dirs(8)):
        with conn.writing():
            runs.append(write_run_graph(conn.driver, conn.database, bundle).run_id)
    return conn, runs[0], runs[1]


def _graph(conn: Connection, name: str, **params) -> list[dict]:
    """Rows of query file `name` with the driver's graph types kept (what Browser draws)."""
    return [dict(r) for r in queries.execute(conn.driver, conn.database, name, params).records]


def _group_ids(path: neo4j.graph.Path) -> list[str]:
    return [n["group_id"] for n in path.nodes if "NeuronGroup" in n.labels]


def test_circuit_graph_draws_every_feeds_edge_of_the_latest_run(two_classes) -> None:
    conn, run3, _ = two_classes
    rows = _graph(conn, "circuit_graph", class_id="digits/3", run_id=None)
    assert rows and all(isinstance(row[k], neo4j.graph.Relationship) for row in rows for k in ("feeds", "logit"))
    assert all(isinstance(row[k], neo4j.graph.Node) for row in rows for k in ("child", "parent", "class"))
    drawn = {(row["child"]["group_id"], row["parent"]["group_id"]) for row in rows}
    expected = {(e["child"], e["parent"]) for e in conn.run("circuit_of_class", class_id="digits/3")
                if e["run_id"] == run3}
    assert drawn == expected
    for row in rows:
        feeds = row["feeds"]
        assert feeds.type == "FEEDS"
        assert (feeds.start_node.element_id, feeds.end_node.element_id) == (row["child"].element_id,
                                                                           row["parent"].element_id)
    (logit,) = {row["logit"].element_id: row["logit"] for row in rows}.values()
    assert logit.type == "LOGIT_OF" and logit.end_node.element_id == rows[0]["class"].element_id
    assert rows[0]["class"]["id"] == "digits/3"
    store = ["--data-dir", conn.data_dir, "--database", conn.database, "--json", "-p", "class_id=digits/3"]
    for name, extra in (("circuit_graph", []), ("graph_bias_paths", []),
                        ("graph_shared_groups", ["-p", "other_class_id=digits/8"])):  # from the command line too
        cli = _invoke("query", name, *store, *extra)
        assert cli.exit_code == 0 and json.loads(cli.output), (name, cli.output[-300:])


def test_graph_bias_paths_are_the_strongest_paths_of_bias_paths(two_classes) -> None:
    conn, run3, _ = two_classes
    every = run_query(conn, "bias_paths", class_id="digits/3", min_weight=0.0, limit=10_000)
    limit = max(1, len(every) // 2)
    rows = _graph(conn, "graph_bias_paths", class_id="digits/3", limit=limit)
    assert len(rows) == limit and all(isinstance(row["path"], neo4j.graph.Path) for row in rows)
    strengths = [row["strength"] for row in rows]
    assert strengths == pytest.approx([p["strength"] for p in every[:limit]])
    by_groups = {tuple(p["groups"]): p["strength"] for p in every}
    for row in rows:
        path = row["path"]
        assert path.end_node["id"] == "digits/3" and path.relationships[-1].type == "LOGIT_OF"
        assert by_groups[tuple(_group_ids(path))] == pytest.approx(row["strength"])
        assert {n["run_id"] for n in path.nodes if "NeuronGroup" in n.labels} == {run3}


def test_graph_shared_groups_draws_the_neurons_two_classes_share(two_classes) -> None:
    conn, run3, run8 = two_classes
    rows = _graph(conn, "graph_shared_groups", class_id="digits/3", other_class_id="digits/8", limit=100_000)
    pairs: dict[frozenset, int] = {}
    for row in rows:
        path = row["shared"]
        assert isinstance(path, neo4j.graph.Path) and [r.type for r in path.relationships] == ["MEMBER_OF"] * 2
        a, b = path.start_node, path.end_node
        assert (a["run_id"], b["run_id"]) == (run3, run8) and a["layer"] == b["layer"]
        pairs[frozenset((a["id"], b["id"]))] = pairs.get(frozenset((a["id"], b["id"])), 0) + 1
    expected = {frozenset((p["group_a"], p["group_b"])): p["shared"]
                for p in run_query(conn, "shared_groups", min_jaccard=0.0, class_id="digits/3", limit=100_000)
                if {p["class_a"], p["class_b"]} == {"digits/3", "digits/8"}}
    assert {k: pairs.get(k) for k in expected} == expected  # shared_groups lists the pairs at or above its floor
    assert pairs, "the digits 3 and 8 circuits share no group: nothing to draw"


def test_the_readme_queries_are_the_browser_query_files() -> None:
    text = README.read_text()
    section = text.split("### Look at it in Neo4j Browser", 1)[1].split("\n### ", 1)[0]
    for name in ("circuit_graph", "graph_bias_paths", "graph_shared_groups"):
        body = "\n".join(queries.load(name).statements)
        assert f"cypher/{name}.cypher" in section
        assert _squash(body) in _squash(section), f"README's {name} query differs from cypher/{name}.cypher"


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_RULE = re.compile(r"(node|relationship)(?:\.(\w+))?\s*\{([^}]*)\}")


def _style() -> dict[tuple[str, str | None], dict[str, str]]:
    rules = {}
    for kind, label, body in _RULE.findall(STYLE_FILE.read_text()):
        pairs = (line.split(":", 1) for line in body.split(";") if ":" in line)
        rules[(kind, label or None)] = {k.strip(): v.strip().strip("'") for k, v in pairs}
    return rules


def test_the_browser_style_names_labels_and_properties_the_embedded_graph_has(two_classes) -> None:
    conn, _, _ = two_classes
    labels = {r["label"] for r in conn.driver.execute_query("CALL db.labels()", database_=conn.database).records}
    types = {r["relationshipType"]
             for r in conn.driver.execute_query("CALL db.relationshipTypes()", database_=conn.database).records}
    rules = _style()
    for (kind, name), rule in rules.items():
        if name is None:
            continue
        assert name in (labels if kind == "node" else types) or name in ("Intervention", "Evaluation", "MASKS",
                                                                           "EVALUATES"), (kind, name)
        caption = re.fullmatch(r"\{(\w+)\}", rule.get("caption", ""))
        if caption and name in (labels | types):
            pattern = f"MATCH (n:{name})" if kind == "node" else f"MATCH ()-[n:{name}]->()"
            record = conn.driver.execute_query(f"{pattern} RETURN keys(n) AS keys LIMIT 1",
                                               database_=conn.database).records[0]
            assert caption.group(1) in record["keys"], (name, caption.group(1), record["keys"])
    unstyled = {label for label in labels if ("node", label) not in rules}
    assert not unstyled, f"labels without a Browser style: {unstyled}"


def _invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_db_start_and_status_say_how_to_connect_neo4j_browser(data_dir: Path) -> None:
    info = server.start(data_dir)
    password = server.read_password(data_dir)
    for command in ("start", "status"):
        out = _invoke("db", command, "--data-dir", data_dir, "--database", "mine").output
        assert f"connect URL {info.bolt_uri}, user root, password in {info.password_file}" in out, out
        assert "database mine" in out and "credentials --show-password" in out
        assert str(STYLE_FILE) in out and ":style" in out
        assert password not in out


def test_db_credentials_shows_the_password_only_when_asked(data_dir: Path, caplog) -> None:
    info = server.start(data_dir)
    password = server.read_password(data_dir)
    plain = _invoke("db", "credentials", "--data-dir", data_dir)
    assert plain.exit_code == 0
    assert plain.output.splitlines() == [f"uri: {info.bolt_uri}", "user: root", "database: neurflow",
                                         f"password: in {info.password_file} (add --show-password to print it)"]
    shown = _invoke("db", "credentials", "--data-dir", data_dir, "--show-password", "--database", "other")
    assert shown.output.splitlines()[2:] == ["database: other", f"password: {password}"]
    assert password not in caplog.text


def test_db_credentials_before_and_between_starts(tmp_path: Path) -> None:
    never = _invoke("db", "credentials", "--data-dir", tmp_path / "never")
    assert never.exit_code == 0 and "uri: none yet (never started: `neurflow-graph db start`)" in never.output
    (tmp_path / "stopped").mkdir()
    (tmp_path / "stopped" / "ports.json").write_text(json.dumps({"bolt_port": 17687, "http_port": 12480}))
    stopped = _invoke("db", "credentials", "--data-dir", tmp_path / "stopped")
    assert "uri: bolt://127.0.0.1:17687 (not running: `neurflow-graph db start`)" in stopped.output
