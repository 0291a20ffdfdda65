"""The query library on the real embedded store holding four real digits runs, checked against the bundles.

Every expected answer is computed here in plain Python (sets, networkx) from the bundles' Parquet tables, never
through the store code.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from neurflow_graph.cli.query import query, show
from neurflow_graph.errors import QueryError
from neurflow_graph.query import (
    fetch_bias_paths,
    fetch_class,
    fetch_class_circuit,
    fetch_classes,
    fetch_exemplars,
    fetch_layer_groups,
    fetch_neuron_roles,
    fetch_run_comparison,
    fetch_run_info,
    fetch_shared_groups,
    fetch_shared_neurons,
    run_query,
    to_table,
)
from neurflow_graph.store import connect, write_run_graph
from neurflow_graph.store.connection import STORE_ENV, Connection
from neurflow_graph.store.shares import SHARES_FLOOR

DATABASE = "q_library"


# -- the bundles, read independently of the store -------------------------------------------------------------


@dataclass(frozen=True)
class B:
    """One bundle's run.json and tables as plain Python rows."""

    path: Path
    run: dict
    groups: list[dict]
    edges: list[dict]
    neurons: list[dict]
    sgs: list[dict]
    patches: list[dict]

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def class_id(self) -> str:
        return f"{self.run['model']['name']}/{self.run['class']['index']}"

    @property
    def root(self) -> str:
        return next(g["group_id"] for g in self.groups if g["is_root"])


def read(path: Path) -> B:
    def table(name: str) -> list[dict]:
        return pq.read_table(path / f"{name}.parquet").to_pylist()

    return B(path, json.loads((path / "run.json").read_text()), table("neuron_groups"), table("group_edges"),
             table("neurons"), table("semantic_groups"), table("patches"))


@pytest.fixture(scope="session")
def digits3_tau5_dir(digits_spec, digits_class3, small_params, tmp_path_factory) -> Path:
    """A second real run of digit 3 with tau=5 (on the same images): what run comparison compares."""
    from neurflow_graph.bundle.files import write_bundle as write_bundle_dir
    from neurflow_graph.engine.pipeline import NeurFlow

    bundle = NeurFlow(progress=False, **{**small_params, "tau": 5}).run(
        digits_spec, 3, digits_class3.images, digits_class3.sha256, "3")
    return write_bundle_dir(bundle, tmp_path_factory.mktemp("bundles") / "digits-3-tau5")


@dataclass
class Store:
    conn: Connection
    data_dir: Path
    bundles: dict[str, B]  # by run id

    def latest(self, class_id: str) -> B:
        (info,) = [c for c in fetch_classes(self.conn) if c.class_id == class_id]
        return self.bundles[info.latest_run]


@pytest.fixture(scope="module")
def store(data_dir, digits_bundle_dir, digits3_tau5_dir, digits_bundle_dirs) -> Iterator[Store]:
    """One database holding runs of digits 3 (tau 4 and tau 5), 5 and 8, shared by this module's tests."""
    with pytest.MonkeyPatch.context() as mp:
        for name in STORE_ENV:
            mp.delenv(name, raising=False)
        with connect(data_dir, database=DATABASE) as conn:
            bundles = {}
            for path in (digits_bundle_dir, digits3_tau5_dir, digits_bundle_dirs(5), digits_bundle_dirs(8)):
                write_run_graph(conn.driver, conn.database, path)
                b = read(path)
                bundles[b.run_id] = b
            yield Store(conn, data_dir, bundles)


@pytest.fixture(scope="module")
def tau4(store, digits_bundle_dir) -> B:
    return read(digits_bundle_dir)


@pytest.fixture(scope="module")
def tau5(store, digits3_tau5_dir) -> B:
    return read(digits3_tau5_dir)


# -- classes and runs ----------------------------------------------------------------------------------------


def test_list_classes_and_the_latest_run_rule(store: Store) -> None:
    classes = {c.class_id: c for c in fetch_classes(store.conn)}
    assert set(classes) == {"digits/3", "digits/5", "digits/8"}
    assert classes["digits/3"].n_runs == 2 and classes["digits/3"].n_complete == 2
    runs3 = [fetch_run_info(store.conn, b.run_id) for b in store.bundles.values() if b.class_id == "digits/3"]
    expected = max(runs3, key=lambda r: (r.created_at, r.completed_at, r.run_id))
    assert classes["digits/3"].latest_run == expected.run_id
    assert fetch_class(store.conn, "3").class_id == "digits/3"
    assert fetch_class(store.conn, "digits/5").class_id == "digits/5"
    assert fetch_class(store.conn, 8).class_id == "digits/8"


def test_a_class_not_ingested_is_a_one_line_error_naming_the_classes(store: Store) -> None:
    with pytest.raises(QueryError) as err:
        fetch_class(store.conn, "7")
    message = str(err.value)
    assert "class '7' is not in the store" in message
    assert "digits/3" in message and "digits/5" in message and "digits/8" in message
    assert "\n" not in message


def test_run_provenance_is_the_run_json(store: Store, tau4: B) -> None:
    info = fetch_run_info(store.conn, tau4.run_id)
    assert info.complete and info.class_id == "digits/3" and info.model == "digits"
    assert info.params == tau4.run["params"]
    assert info.run_json == tau4.run
    assert info.layers == tuple(tau4.run["layers"])
    assert info.bundle_path == str(tau4.path.resolve())
    with pytest.raises(QueryError, match="run 'no-such-run' is not in the store; runs in the store"):
        fetch_run_info(store.conn, "no-such-run")


# -- the circuit of a class ----------------------------------------------------------------------------------


@pytest.mark.parametrize("run", ["tau4", "tau5"])
def test_circuit_groups_and_edges_equal_the_bundle(store: Store, run: str, request) -> None:
    b: B = request.getfixturevalue(run)
    circuit = fetch_class_circuit(store.conn, "digits/3", run_id=b.run_id)
    assert circuit.run_id == b.run_id
    neuron_channel = {n["neuron_id"]: n["channel"] for n in b.neurons}
    expected = {g["group_id"]: (g["layer"], g["layer_index"], g["is_root"],
                                tuple(sorted(g["neuron_ids"], key=neuron_channel.get)),
                                tuple(g["exemplar_patch_ids"])) for g in b.groups}
    got = {g.group_id: (g.layer, g.layer_index, g.is_root, g.neurons, tuple(e.patch_id for e in g.exemplars))
           for g in circuit.groups}
    assert got == expected
    assert all(e.path is not None and e.path.is_file() for g in circuit.groups for e in g.exemplars)
    layer_order = [layer for layer, _ in circuit.layers()]
    assert layer_order == [layer for layer in b.run["layers"] if any(g["layer"] == layer for g in b.groups)]
    edges = {(e.child, e.parent): (e.weight, e.n_edges) for e in circuit.edges}
    assert edges == {(e["child_group_id"], e["parent_group_id"]): (pytest.approx(e["weight"]), e["n_edges"])
                     for e in b.edges}
    table = to_table(circuit.edges)
    assert table.num_rows == len(b.edges) and "weight" in table.column_names


def test_the_latest_complete_run_is_the_default(store: Store) -> None:
    latest = store.latest("digits/3")
    circuit = fetch_class_circuit(store.conn, "3")
    assert circuit.run_id == latest.run_id
    assert run_query(store.conn, "circuit_edges", class_id="digits/3") == \
        run_query(store.conn, "circuit_edges", class_id="digits/3", run_id=latest.run_id)


@pytest.mark.parametrize("top_n", [1, 2])
def test_top_n_pruning_keeps_the_strongest_inputs_of_each_parent(store: Store, tau5: B, top_n: int) -> None:
    circuit = fetch_class_circuit(store.conn, "digits/3", run_id=tau5.run_id, top_n=top_n)
    by_parent: dict[str, list[dict]] = {}
    for e in tau5.edges:
        by_parent.setdefault(e["parent_group_id"], []).append(e)
    expected = set()
    for parent, edges in by_parent.items():
        edges.sort(key=lambda e: (-abs(e["weight"]), e["child_group_id"]))
        expected |= {(e["child_group_id"], parent, rank) for rank, e in enumerate(edges[:top_n])}
    assert {(e.child, e.parent, e.rank) for e in circuit.edges} == expected
    assert len(circuit.groups) == len(tau5.groups)  # pruning drops edges, never groups


def test_a_run_of_another_class_is_refused(store: Store) -> None:
    other = next(b for b in store.bundles.values() if b.class_id == "digits/5")
    with pytest.raises(QueryError, match=f"run '{other.run_id}' is not a complete run of class digits/3"):
        fetch_class_circuit(store.conn, "3", run_id=other.run_id)


# -- bias paths ----------------------------------------------------------------------------------------------


def _nx_paths(b: B, sources: set[str] | None = None, min_weight: float = 0.0) -> list[tuple[tuple[str, ...], float]]:
    graph = nx.DiGraph()
    for e in b.edges:
        graph.add_edge(e["child_group_id"], e["parent_group_id"], weight=e["weight"])
    out = []
    for g in b.groups:
        if g["is_root"] or (sources is not None and g["group_id"] not in sources) or g["group_id"] not in graph:
            continue
        for path in nx.all_simple_paths(graph, g["group_id"], b.root):
            weights = [graph[u][v]["weight"] for u, v in zip(path, path[1:], strict=False)]
            if all(abs(w) >= min_weight for w in weights):
                out.append((tuple(path), math.prod(abs(w) for w in weights)))
    return sorted(out, key=lambda p: -p[1])


@pytest.mark.parametrize("run", ["tau4", "tau5"])
def test_bias_paths_rank_like_networkx(store: Store, run: str, request) -> None:
    b: B = request.getfixturevalue(run)
    expected = _nx_paths(b)
    got = fetch_bias_paths(store.conn, "digits/3", run_id=b.run_id, limit=1000)
    assert len(got) == len(expected) > 0
    assert {(p.groups, round(p.strength, 9)) for p in got} == {(g, round(s, 9)) for g, s in expected}
    assert [p.strength for p in got] == pytest.approx([s for _, s in expected])  # same ranking
    for p in got:
        assert p.groups[0] == p.source and p.groups[-1] == b.root and p.hops == len(p.weights)
        assert p.product == pytest.approx(math.prod(p.weights))
        assert p.log_strength == pytest.approx(sum(math.log(abs(w)) for w in p.weights))
    logs = [p.log_strength for p in got]
    assert logs == sorted(logs, reverse=True)  # ranking by Σ log|w| is the same ranking
    top3 = fetch_bias_paths(store.conn, "digits/3", run_id=b.run_id, limit=3)
    assert [p.strength for p in top3] == pytest.approx([s for _, s in expected[:3]])


def test_bias_paths_from_a_neuron_a_group_and_with_pruning(store: Store, tau4: B) -> None:
    neuron = next(n for g in tau4.groups if g["layer_index"] == 2 for n in g["neuron_ids"])
    groups_of_neuron = {g["group_id"] for g in tau4.groups if neuron in g["neuron_ids"]}
    got = fetch_bias_paths(store.conn, "3", source=neuron, run_id=tau4.run_id, limit=1000)
    assert {(p.groups, round(p.strength, 9)) for p in got} == \
        {(g, round(s, 9)) for g, s in _nx_paths(tau4, groups_of_neuron)}
    group = sorted(groups_of_neuron)[0]
    for source in (group, f"{tau4.run_id}/{group}"):
        got = fetch_bias_paths(store.conn, "3", source=source, run_id=tau4.run_id, limit=1000)
        assert {p.groups for p in got} == {g for g, _ in _nx_paths(tau4, {group})}
    cut = sorted(abs(e["weight"]) for e in tau4.edges)[len(tau4.edges) // 2]
    got = fetch_bias_paths(store.conn, "3", run_id=tau4.run_id, min_weight=cut, limit=1000)
    assert {p.groups for p in got} == {g for g, _ in _nx_paths(tau4, min_weight=cut)}


# -- shared groups and neurons ---------------------------------------------------------------------------------


def _latest_bundles(store: Store) -> list[B]:
    return [store.latest(c) for c in ("digits/3", "digits/5", "digits/8")]


@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_shared_groups_are_the_jaccard_of_member_neurons(store: Store, threshold: float) -> None:
    """Every pair of the classes' latest runs at or above max(threshold, the writer's SHARES floor), none other."""
    latest = _latest_bundles(store)
    floor = max(threshold, SHARES_FLOOR)
    expected = {}
    for i, a in enumerate(latest):
        for b in latest[i + 1:]:
            for ga in a.groups:
                for gb in b.groups:
                    if ga["is_root"] or gb["is_root"] or ga["layer"] != gb["layer"]:
                        continue
                    sa, sb = set(ga["neuron_ids"]), set(gb["neuron_ids"])
                    if sa & sb and len(sa & sb) / len(sa | sb) >= floor:
                        key = frozenset({f"{a.run_id}/{ga['group_id']}", f"{b.run_id}/{gb['group_id']}"})
                        expected[key] = (len(sa & sb) / len(sa | sb), sa & sb)
    got = fetch_shared_groups(store.conn, min_jaccard=threshold, limit=10_000)
    assert {frozenset({s.group_a, s.group_b}): (s.jaccard, set(s.shared_neurons)) for s in got} == \
        {k: (pytest.approx(j), n) for k, (j, n) in expected.items()}
    assert all(s.class_a != s.class_b for s in got)
    assert [s.jaccard for s in got] == sorted((s.jaccard for s in got), reverse=True)
    assert len(expected) > 0


def test_shared_groups_filters(store: Store) -> None:
    every = fetch_shared_groups(store.conn, min_jaccard=0.0, limit=10_000)
    of_5 = fetch_shared_groups(store.conn, min_jaccard=0.0, cls="5", limit=10_000)
    assert {(s.group_a, s.group_b) for s in of_5} == \
        {(s.group_a, s.group_b) for s in every if "digits/5" in (s.class_a, s.class_b)}
    for layer in ("conv2", "digits/conv2"):
        got = fetch_shared_groups(store.conn, min_jaccard=0.0, layer=layer, limit=10_000)
        assert {(s.group_a, s.group_b) for s in got} == {(s.group_a, s.group_b) for s in every if s.layer == "conv2"}
    assert len(fetch_shared_groups(store.conn, min_jaccard=0.0, limit=2)) == min(2, len(every))
    cut = sorted(s.jaccard for s in every)[len(every) // 2]  # a threshold above the floor, from the data
    assert {(s.group_a, s.group_b) for s in fetch_shared_groups(store.conn, min_jaccard=cut, limit=10_000)} == \
        {(s.group_a, s.group_b) for s in every if s.jaccard >= cut}


@pytest.mark.parametrize("layer", ["conv3", "conv2", "digits/conv1"])
def test_shared_neurons_count_classes(store: Store, layer: str) -> None:
    name = layer.rsplit("/", 1)[-1]
    classes: dict[str, set[str]] = {}
    groups: dict[str, int] = {}
    for b in _latest_bundles(store):
        for n in b.neurons:
            if n["layer"] == name:
                classes.setdefault(n["neuron_id"], set()).add(b.class_id)
        for g in b.groups:
            for n in g["neuron_ids"]:
                groups[n] = groups.get(n, 0) + 1
    got = fetch_shared_neurons(store.conn, layer, min_classes=1, limit=10_000)
    assert {s.neuron_id: (set(s.classes), s.n_groups) for s in got} == \
        {n: (c, groups.get(n, 0)) for n, c in classes.items()}
    many = fetch_shared_neurons(store.conn, layer, min_classes=2, limit=10_000)
    assert {s.neuron_id for s in many} == {n for n, c in classes.items() if len(c) >= 2}


def test_neuron_roles_list_every_semantic_group_and_group(store: Store) -> None:
    latest = _latest_bundles(store)
    counts: dict[str, int] = {}
    for b in latest:
        for s in b.sgs:
            counts[s["neuron_id"]] = counts.get(s["neuron_id"], 0) + 1
    neuron = max(counts, key=lambda n: (counts[n], n))
    expected = {(b.class_id, s["sg_id"], s["neuron_group_id"]) for b in latest for s in b.sgs
                if s["neuron_id"] == neuron}
    got = fetch_neuron_roles(store.conn, neuron)
    assert {(r.class_id, r.semantic_group, r.neuron_group) for r in got} == expected
    leaf = next(n["neuron_id"] for n in latest[0].neurons if n["is_leaf"])
    roles = fetch_neuron_roles(store.conn, leaf)
    assert roles and all(r.is_leaf and r.semantic_group is None for r in roles)


# -- exemplars, layer groups ------------------------------------------------------------------------------------


def test_group_exemplars(store: Store, tau4: B) -> None:
    patches = {p["patch_id"]: p for p in tau4.patches}
    for g in tau4.groups:
        got = fetch_exemplars(store.conn, f"{tau4.run_id}/{g['group_id']}")
        assert [e.patch_id for e in got] == g["exemplar_patch_ids"]
        for e in got:
            p = patches[e.patch_id]
            assert e.box == (p["x0"], p["y0"], p["x1"], p["y1"]) and e.image_index == p["image_index"]
            assert e.path == tau4.path.resolve() / p["thumbnail"]


def test_layer_groups_carry_channels_and_activation_max(store: Store, tau4: B) -> None:
    from neurflow_graph.debugging import layer_groups_from_bundle

    got = fetch_layer_groups(store.conn, "3", "conv3", run_id=tau4.run_id)
    assert got == layer_groups_from_bundle(tau4.path, "conv3")
    act = {n["neuron_id"]: n["activation_max"] for n in tau4.neurons}
    for g in got:
        assert g.activation_max == pytest.approx([act[n] for n in g.neurons])
        assert g.weight_up == pytest.approx(sum(e["weight"] for e in tau4.edges if e["child_group_id"] == g.group_id))
    with pytest.raises(QueryError, match="layer 'conv1' has no neuron groups in run .*; layers with groups: conv3"):
        fetch_layer_groups(store.conn, "3", "conv1", run_id=tau4.run_id)


# -- two runs compared ----------------------------------------------------------------------------------------


def _greedy(a: B, b: B, threshold: float) -> dict[str, tuple[str, float]]:
    pairs = []
    for ga in a.groups:
        for gb in b.groups:
            sa, sb = set(ga["neuron_ids"]), set(gb["neuron_ids"])
            if ga["layer"] == gb["layer"] and sa & sb:
                j = len(sa & sb) / len(sa | sb)
                if j >= threshold:
                    pairs.append((j, ga["group_id"], gb["group_id"]))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    used_a, used_b, out = set(), set(), {}
    for j, x, y in pairs:
        if x not in used_a and y not in used_b:
            used_a.add(x)
            used_b.add(y)
            out[x] = (y, j)
    return out


@pytest.mark.parametrize("threshold", [0.5, 1.0])
def test_compare_runs_matches_groups_greedily_by_jaccard(store: Store, tau4: B, tau5: B, threshold: float) -> None:
    match = _greedy(tau4, tau5, threshold)
    cmp = fetch_run_comparison(store.conn, tau4.run_id, tau5.run_id, min_jaccard=threshold)
    got = {(m.group_a, m.group_b, m.status) for m in cmp.groups}
    expected = set()
    for g in tau4.groups:
        if g["group_id"] in match:
            y, j = match[g["group_id"]]
            expected.add((g["group_id"], y, "same" if j == 1.0 else "changed"))
        else:
            expected.add((g["group_id"], None, "disappeared"))
    matched_b = {y for y, _ in match.values()}
    expected |= {(None, g["group_id"], "appeared") for g in tau5.groups if g["group_id"] not in matched_b}
    assert got == expected
    for m in cmp.groups:
        if m.jaccard is not None:
            assert m.jaccard == pytest.approx(match[m.group_a][1])

    weights_b = {(e["child_group_id"], e["parent_group_id"]): e["weight"] for e in tau5.edges}
    expected_edges = set()
    hit = set()
    for e in tau4.edges:
        c, p = match.get(e["child_group_id"], (None,))[0], match.get(e["parent_group_id"], (None,))[0]
        if c is not None and p is not None and (c, p) in weights_b:
            hit.add((c, p))
            status = "same" if abs(weights_b[(c, p)] - e["weight"]) <= 1e-9 else "changed"
            expected_edges.add((e["child_group_id"], e["parent_group_id"], c, p, status))
        else:
            expected_edges.add((e["child_group_id"], e["parent_group_id"], c, p, "disappeared"))
    expected_edges |= {(None, None, c, p, "appeared") for (c, p) in weights_b if (c, p) not in hit}
    assert {(x.child_a, x.parent_a, x.child_b, x.parent_b, x.status) for x in cmp.edges} == expected_edges
    for x in cmp.edges:
        if x.status in ("same", "changed"):
            assert x.delta == pytest.approx(x.weight_b - x.weight_a)


def test_a_run_compared_with_itself_is_all_same(store: Store, tau4: B) -> None:
    cmp = fetch_run_comparison(store.conn, tau4.run_id, tau4.run_id)
    assert cmp.count("same") == len(tau4.groups) and cmp.count("same", "edges") == len(tau4.edges)
    assert len(cmp.groups) == len(tau4.groups) and len(cmp.edges) == len(tau4.edges)


# -- the `query` and `show` commands -----------------------------------------------------------------------------


def _invoke(command, store: Store, *args: str):
    return CliRunner().invoke(command, [*args, "--data-dir", str(store.data_dir), "--database", DATABASE],
                              catch_exceptions=False)


def test_query_command_prints_a_table_and_json(store: Store, tau4: B) -> None:
    result = _invoke(query, store, "circuit_edges", "--param", "class_id=3", "-p", f"run_id={tau4.run_id}")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["run_id", "child", "parent"]
    assert lines[-1] == f"({len(tau4.edges)} rows)"
    result = _invoke(query, store, "bias_paths", "-p", "class_id=digits/3", "-p", f"run_id={tau4.run_id}",
                     "-p", "limit=2", "--json")
    rows = json.loads(result.output)
    assert len(rows) == 2 and rows[0]["strength"] >= rows[1]["strength"]
    listing = _invoke(query, store, "--list")
    assert "shared_groups" in listing.output and "min_jaccard (default 0.5)" in listing.output


@pytest.mark.parametrize("args, message", [
    (["no_such_query"], "'no_such_query' is not a query; available queries: bias_paths, circuit_edges"),
    (["write_neurons"], "'write_neurons' writes to the store; available queries:"),
    (["circuit_edges"], "query 'circuit_edges' needs parameter class_id"),
    (["circuit_edges", "-p", "class_id=3", "-p", "colour=red"], "query 'circuit_edges' has no parameter colour"),
    (["circuit_edges", "-p", "class_id=7"], "class '7' is not in the store"),
    (["circuit_edges", "-p", "class_id"], "--param expects KEY=VALUE"),
    (["run_provenance", "-p", "run_id=nope"], "run 'nope' is not in the store; runs in the store"),
])
def test_query_command_errors_are_one_line(store: Store, args: list[str], message: str) -> None:
    result = _invoke(query, store, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.count("\n") == 1, result.output


def test_show_writes_a_self_contained_page(store: Store, tau5: B, tmp_path: Path) -> None:
    out = tmp_path / "c3.html"
    result = _invoke(show, store, "3", "--run-id", tau5.run_id, "--out", str(out), "--exemplars", "3")
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("data:image/png;base64,") == sum(min(3, len(g["exemplar_patch_ids"])) for g in tau5.groups)
    assert page.count('class="edge"') == len(tau5.edges)
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "<script" not in page
    missing = _invoke(show, store, "seven", "--out", str(out))
    assert missing.exit_code == 1 and "class 'seven' is not in the store; classes in the store" in missing.output


def test_show_draws_labels_and_grey_boxes_when_the_bundle_moved(conn: Connection, digits_bundle_dir: Path,
                                                                 tmp_path: Path, data_dir: Path) -> None:
    copy = shutil.copytree(digits_bundle_dir, tmp_path / "bundle")
    run_id = write_run_graph(conn.driver, conn.database, copy).run_id
    conn.driver.execute_query(  # what concept labelling stores (docs/labels.md)
        "MATCH (g:NeuronGroup {id: $id}) SET g.label = 'round top stroke', g.description = 'The upper arc.'",
        {"id": f"{run_id}/conv3/g0"}, database_=conn.database)
    copy.rename(tmp_path / "moved")
    out = tmp_path / "c.html"
    result = CliRunner().invoke(show, ["digits/3", "--out", str(out), "--data-dir", str(data_dir),
                                       "--database", conn.database], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "not found under" in result.output
    page = out.read_text()
    assert "data:image/png;base64," not in page and 'class="missing"' in page
    assert "round top stroke" in page and "<title>The upper arc." in page
