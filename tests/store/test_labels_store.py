"""Concept labelling end to end: the real digits run in the real embedded ArcadeDB, a chat-completions server on
127.0.0.1 (from tests/test_labels.py) answering; labels read back from the graph."""

# ruff: noqa: F401, F811 - fake_llm/llm_env are pytest fixtures imported from test_labels (shared, not redefined)
from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from test_labels import (
    KEY,
    LLM_ENV,
    FakeChatServer,
    fake_llm,
    label_answer,
    llm_env,
    ok,
    prompt_text,
    request_images,
)

from neurflow_graph.cli.labels import label
from neurflow_graph.errors import ArtifactError, ConfigError, StoreError
from neurflow_graph.labels import ChatClient, EndpointNotConfigured, LLMSettings, grid_size, label_circuit
from neurflow_graph.labels import prompts as P
from neurflow_graph.labels.labeler import top_edges
from neurflow_graph.query.labels import fetch_edges
from neurflow_graph.store import write_run_graph
from neurflow_graph.store.connection import Connection

CLASS = "digits/3"


@dataclass(frozen=True)
class Expected:
    """What labelling the digits run must do, read from its bundle (the trained model differs between CPUs)."""

    groups: tuple[str, ...]  # every neuron group, in labelling order (logit layer first)
    layers: dict[str, tuple[str, ...]]  # the groups of each layer
    edges: tuple[dict, ...]  # every group edge of the bundle

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def relations(self, per_parent: int = 2, child_layer: str | None = None) -> set[tuple[str, str]]:
        """The (child, parent) edges explained: the `per_parent` heaviest positive edges into each parent."""
        by_parent = defaultdict(list)
        for e in self.edges:
            if e["weight"] > 0:
                by_parent[e["parent_group_id"]].append(e)
        chosen = {(e["child_group_id"], e["parent_group_id"]) for into in by_parent.values()
                  for e in sorted(into, key=lambda e: (-e["weight"], e["child_group_id"]))[:per_parent]}
        return {(c, p) for c, p in chosen if child_layer is None or c in self.layers[child_layer]}

    @property
    def n_relations(self) -> int:
        return len(self.relations())


@pytest.fixture(scope="module")
def expected(digits_bundle_dir: Path) -> Expected:
    rows = pq.read_table(digits_bundle_dir / "neuron_groups.parquet",
                         columns=["group_id", "layer", "layer_index"]).to_pylist()
    rows.sort(key=lambda r: (r["layer_index"], r["group_id"]))
    layers = defaultdict(list)
    for r in rows:
        layers[r["layer"]].append(r["group_id"])
    edges = pq.read_table(digits_bundle_dir / "group_edges.parquet").to_pylist()
    found = Expected(tuple(r["group_id"] for r in rows), {k: tuple(v) for k, v in layers.items()}, tuple(edges))
    assert found.groups[:2] == ("fc/g0", "conv3/g0")  # by construction: the root, then conv3's first group
    return found


@pytest.fixture
def run_id(conn: Connection, digits_bundle_dir: Path) -> str:
    """The digits run of class 3, loaded into this test's fresh database."""
    return write_run_graph(conn.driver, conn.database, digits_bundle_dir).run_id


def client_for(server: FakeChatServer) -> ChatClient:
    settings = LLMSettings.from_env({"NEURFLOW_LLM_BASE_URL": server.url, "NEURFLOW_LLM_MODEL": "fake-vlm",
                                     "NEURFLOW_LLM_API_KEY": KEY, "NEURFLOW_LLM_MAX_TRIES": "3",
                                     "NEURFLOW_LLM_RETRY_DELAY": "0"})
    assert settings is not None
    return ChatClient(settings)


def exemplar_counts(bundle: Path) -> dict[str, int]:
    rows = pq.read_table(bundle / "neuron_groups.parquet", columns=["group_id", "exemplar_patch_ids"]).to_pylist()
    return {r["group_id"]: len(r["exemplar_patch_ids"]) for r in rows}


def groups(conn: Connection, run_id: str) -> dict[str, dict]:
    return {r["group_id"]: r for r in conn.run("label_groups", run_id=run_id)}


def edges(conn: Connection, run_id: str) -> dict[tuple[str, str], dict]:
    return {(r["child_group_id"], r["parent_group_id"]): r for r in conn.run("label_edges", run_id=run_id)}


def all_graph_text(conn: Connection) -> str:
    """Every property of every node and relationship, as text (to look for the key)."""
    nodes = conn.driver.execute_query("MATCH (n) RETURN n", database_=conn.database).records
    rels = conn.driver.execute_query("MATCH ()-[r]->() RETURN r", database_=conn.database).records
    return json.dumps([dict(r["n"]) for r in nodes] + [dict(r["r"]) for r in rels], default=str)


def invoke(*args: object):
    return CliRunner().invoke(label, [str(a) for a in args], catch_exceptions=False)


def test_label_stores_labels_and_relations_on_the_graph(conn, run_id, fake_llm, digits_bundle_dir, caplog,
                                                         expected):
    n_groups, n_relations = expected.n_groups, expected.n_relations
    with caplog.at_level(logging.DEBUG):
        report = label_circuit(conn, CLASS, client=client_for(fake_llm))
    assert report.ok and report.run_id == run_id
    assert report.count("group", "labelled") == n_groups and report.count("relation", "labelled") == n_relations
    assert len(fake_llm.requests) == n_groups + n_relations

    counts = exemplar_counts(digits_bundle_dir)
    group_requests = fake_llm.requests[:n_groups]
    stored = groups(conn, run_id)
    assert [r.target for r in report.results if r.kind == "group"] == list(expected.groups)
    for request, (group_id, row) in zip(group_requests, sorted(stored.items(), key=lambda kv: (
            kv[1]["layer_index"], kv[0])), strict=True):
        assert request["headers"]["Authorization"] == f"Bearer {KEY}" and request["body"]["model"] == "fake-vlm"
        (image,) = request_images(request["body"])
        assert image.size == grid_size(min(counts[group_id], 8))
        assert row["label"].startswith("curved strokes ") and row["description"]
        assert row["label_model"] == "fake-vlm" and row["label_prompt_version"] == P.LABEL_PROMPT_VERSION
        assert len(row["label_key"]) == 32
    for request in fake_llm.requests[n_groups:]:
        assert "Group 2" in prompt_text(request["body"]) and len(request_images(request["body"])) == 2

    stored_edges = edges(conn, run_id)
    explained = {k for k, e in stored_edges.items() if e["relation"] is not None}
    chosen = {(e.child, e.parent) for e in top_edges(fetch_edges(conn, run_id), 2)}
    assert explained == chosen == expected.relations(2)
    for parent in {p for _, p in stored_edges}:  # the two heaviest positive edges into each parent are kept
        into = {c: e["weight"] for (c, p), e in stored_edges.items() if p == parent}
        kept = [w for c, w in into.items() if (c, parent) in explained]
        passed = [w for c, w in into.items() if (c, parent) not in explained and w > 0]
        assert len(kept) == min(2, len(kept) + len(passed)) and all(w > 0 for w in kept), parent
        assert not passed or min(kept) >= max(passed), parent
    for key in explained:
        e = stored_edges[key]
        assert e["relation"].startswith("The arcs close") and e["relation_model"] == "fake-vlm"
        assert e["relation_prompt_version"] == P.RELATION_PROMPT_VERSION and len(e["relation_key"]) == 32

    found = conn.driver.execute_query("MATCH (g:NeuronGroup) WHERE g.label CONTAINS 'strokes' RETURN g.id AS id",
                                      database_=conn.database).records
    assert len(found) == n_groups
    assert len(conn.run("label_search", text="CURVED")) == n_groups
    assert KEY not in all_graph_text(conn) and KEY not in caplog.text


def test_second_run_sends_nothing_force_resends_new_prompt_version_resends(conn, run_id, fake_llm, monkeypatch,
                                                                           expected):
    n_groups, n_relations = expected.n_groups, expected.n_relations
    client = client_for(fake_llm)
    label_circuit(conn, CLASS, client=client)
    first = groups(conn, run_id)
    sent = len(fake_llm.requests)

    again = label_circuit(conn, CLASS, client=client)
    assert len(fake_llm.requests) == sent
    assert again.count("group", "cached") == n_groups and again.count("relation", "cached") == n_relations
    assert groups(conn, run_id) == first

    forced = label_circuit(conn, CLASS, client=client, force=True)
    assert forced.count("group", "labelled") == n_groups
    assert len(fake_llm.requests) == sent + n_groups + n_relations
    sent = len(fake_llm.requests)

    monkeypatch.setattr(P, "LABEL_PROMPT_VERSION", "label-test-v2")
    bumped = label_circuit(conn, CLASS, client=client)
    assert len(fake_llm.requests) == sent + n_groups  # relations keep their own version: cached
    assert bumped.count("group", "labelled") == n_groups and bumped.count("relation", "cached") == n_relations
    rows = groups(conn, run_id)
    assert {r["label_prompt_version"] for r in rows.values()} == {"label-test-v2"}
    assert all(rows[g]["label_key"] != first[g]["label_key"] for g in rows)


def test_retries_on_429_and_500_inside_a_pass_then_everything_is_stored(conn, run_id, fake_llm, expected):
    n_groups, n_relations = expected.n_groups, expected.n_relations
    fake_llm.replies = [(429, {"Retry-After": "0"}, b"{}"), (500, {}, b"{}")]
    report = label_circuit(conn, CLASS, client=client_for(fake_llm))
    assert report.ok and report.count("group", "labelled") == n_groups
    assert len(fake_llm.requests) == n_groups + n_relations + 2
    assert all(r["label"] for r in groups(conn, run_id).values())


def test_malformed_answer_fails_one_group_stores_nothing_for_it_and_the_others_continue(
        conn, run_id, llm_env, data_dir, database_name, expected):
    n_groups, n_relations = expected.n_groups, expected.n_relations
    llm_env.replies = [ok(label_answer("class three")), ok("These patches look like curves to me.")]
    result = invoke(CLASS, "--data-dir", data_dir, "--database", database_name)
    assert result.exit_code == 1
    assert "group conv3/g0: FAILED: the answer is not the JSON object" in result.stderr
    assert f"groups: {n_groups - 1} labelled, 0 cached, 1 failed, 0 skipped" in result.output
    assert f"relations: {n_relations} explained, 0 cached, 0 failed, 0 skipped" in result.output
    assert "failed group conv3/g0" in result.output  # the summary lists it
    rows = groups(conn, run_id)
    assert all(rows["conv3/g0"][p] is None for p in ("label", "description", "label_model", "label_key"))
    assert rows["fc/g0"]["label"] == "class three"
    assert all(rows[g]["label"] for g in rows if g != "conv3/g0")
    assert KEY not in result.output and KEY not in result.stderr

    retry = invoke(CLASS, "--data-dir", data_dir, "--database", database_name)  # only the failed group is resent
    assert retry.exit_code == 0, retry.output
    assert len(llm_env.requests) == n_groups + n_relations + 1
    assert groups(conn, run_id)["conv3/g0"]["label"]


def test_fatal_endpoint_error_stops_the_pass_and_exits_non_zero(conn, run_id, llm_env, data_dir, database_name,
                                                                expected):
    llm_env.replies = [(401, {}, json.dumps({"error": {"message": f"bad key {KEY}"}}).encode())]
    result = invoke(CLASS, "--data-dir", data_dir, "--database", database_name)
    assert result.exit_code == 1 and len(llm_env.requests) == 1
    assert "HTTP 401" in result.output and "stopped:" in result.output
    assert f"groups: 0 labelled, 0 cached, 1 failed, {expected.n_groups - 1} skipped" in result.output
    assert f"relations: 0 explained, 0 cached, 0 failed, {expected.n_relations} skipped" in result.output
    assert KEY not in result.output and "***" in result.output
    assert all(r["label"] is None for r in groups(conn, run_id).values())


def test_cli_labels_a_chosen_layer_and_prints_what_it_stored(conn, run_id, llm_env, data_dir, database_name,
                                                             expected):
    result = invoke(CLASS, "--layers", "conv3", "--run", run_id, "--max-relations", "1",
                    "--data-dir", data_dir, "--database", database_name)
    assert result.exit_code == 0, result.output
    conv3, relations = expected.layers["conv3"], expected.relations(1, child_layer="conv3")
    assert "group conv3/g0: labelled: curved strokes" in result.output
    assert f"groups: {len(conv3)} labelled," in result.output
    assert f"relations: {len(relations)} explained," in result.output and len(relations) == 1  # into fc/g0
    assert KEY not in result.output and KEY not in result.stderr
    rows = groups(conn, run_id)
    assert {g for g, r in rows.items() if r["label"]} == set(conv3)
    assert {k for k, e in edges(conn, run_id).items() if e["relation"]} == relations

    bad = invoke(CLASS, "--layers", "conv9", "--data-dir", data_dir, "--database", database_name)
    assert bad.exit_code == 1 and "'conv9'" in bad.output and "valid layers: fc, conv3, conv2" in bad.output
    other = invoke("digits/4", "--data-dir", data_dir, "--database", database_name)
    assert other.exit_code == 1 and "class 'digits/4' is not in the store" in other.output
    wrong = invoke("digits/4", "--run", run_id, "--data-dir", data_dir, "--database", database_name)
    assert wrong.exit_code == 1 and "is of class digits/3" in wrong.output
    assert len(llm_env.requests) == len(conv3) + len(relations)


def test_dry_run_writes_every_prompt_with_its_grids_and_sends_nothing(
        conn, run_id, llm_env, data_dir, database_name, digits_bundle_dir, tmp_path, expected):
    n_groups, n_relations = expected.n_groups, expected.n_relations
    out = tmp_path / "prompts"
    result = invoke(CLASS, "--dry-run", out, "--data-dir", data_dir, "--database", database_name)
    assert result.exit_code == 0, result.output
    assert f"{n_groups} group prompts and {n_relations} relation prompts" in result.output
    assert "nothing was sent" in result.output
    assert llm_env.requests == []
    assert all(r["label"] is None for r in groups(conn, run_id).values())

    counts = exemplar_counts(digits_bundle_dir)
    texts = sorted(out.glob("group-*.txt"))
    assert len(texts) == n_groups and len(list(out.glob("relation-*.txt"))) == n_relations
    for group_id, n in counts.items():
        stem = group_id.replace("/", "-")
        text = (out / f"group-{stem}.txt").read_text()
        assert "Step by step" in text and f"[image: grid-{stem}.png]" in text
        with Image.open(out / f"grid-{stem}.png") as image:
            assert image.format == "PNG" and image.size == grid_size(min(n, 8))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["requests"] == n_groups + n_relations and manifest["model"] == "fake-vlm"
    assert manifest["images_sent"] == n_groups + 2 * n_relations and manifest["image_bytes_sent"] > 0
    relation = next(p for p in manifest["prompts"] if p["kind"] == "relation")
    assert relation["images"] == ["grid-" + relation["target"].split(" -> ")[1].replace("/", "-") + ".png",
                                  "grid-" + relation["target"].split(" -> ")[0].replace("/", "-") + ".png"]
    for path in out.iterdir():
        assert KEY.encode() not in path.read_bytes()


def test_dry_run_needs_no_endpoint_and_checks_the_bundle(conn, run_id, monkeypatch, tmp_path, digits_bundle_dir,
                                                          expected):
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)
    report = label_circuit(conn, "3", client=None, dry_run_dir=tmp_path / "p", max_relations=0)
    assert report.count("group", "prompted") == expected.n_groups and report.ok
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["model"] is None
    with pytest.raises(EndpointNotConfigured, match="NEURFLOW_LLM_BASE_URL"):
        label_circuit(conn, "3", client=None)
    with pytest.raises(ArtifactError, match="pass --bundle DIR"):
        label_circuit(conn, "3", client=None, dry_run_dir=tmp_path / "q", bundle_dir=tmp_path / "moved")
    assert label_circuit(conn, "3", client=None, dry_run_dir=tmp_path / "r", bundle_dir=digits_bundle_dir).ok
    with pytest.raises(ConfigError, match="max_relations"):
        label_circuit(conn, "3", client=None, dry_run_dir=tmp_path / "s", max_relations=-1)
    with pytest.raises(StoreError, match="not in the store"):
        label_circuit(conn, "3", client=None, dry_run_dir=tmp_path / "t", run_id="nope")
