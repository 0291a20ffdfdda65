"""Every page of the explorer and its JSON twin on a real store of real digits circuits: the numbers shown are
the query helpers' answers for the same thing; unknown things are 404 pages; store strings are escaped."""

from __future__ import annotations

import io
import re
import shutil
from html import unescape
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from neurflow_graph.query import (
    fetch_bias_paths,
    fetch_class_circuit,
    fetch_class_index,
    fetch_evaluations,
    fetch_exemplars,
    fetch_faithfulness,
    fetch_group_shares,
    fetch_interventions,
    fetch_neuron_roles,
    fetch_run_info,
    fetch_shared_groups,
)
from neurflow_graph.query.labels import write_group_label
from neurflow_graph.serve import pages
from neurflow_graph.serve.app import create_app, inside_bundle
from neurflow_graph.store import connect, write_run_graph

from .conftest import DIGITS, ReadOnly, app_client

CLASSES = [f"digits/{c}" for c in DIGITS] + ["digits-vit/3"]


def _ids(html: str, attribute: str) -> list[str]:
    return [unescape(v) for v in re.findall(rf'{attribute}="([^"]*)"', html)]


def test_index_lists_every_class_with_the_helpers_numbers(client, conn) -> None:
    expected = fetch_class_index(conn)
    assert {c.class_id for c in expected} == set(CLASSES)
    data = client.get("/index.json").json()
    assert [(c["class_id"], c["n_groups"], c["n_edges"], c["status"]) for c in data["classes"]] == \
        [(c.class_id, c.n_groups, c.n_edges, c.status) for c in expected]
    assert {m["model"]: m["n_classes"] for m in data["models"]} == {"digits": len(DIGITS), "digits-vit": 1}
    for c in expected:
        circuit = fetch_class_circuit(conn, c.class_id)
        assert c.n_groups == len(circuit.groups) and c.latest_run == circuit.run_id  # recorded = stored
    html = client.get("/").text
    for c in expected:
        row = re.search(rf'<tr data-class="{re.escape(c.class_id)}">(.*?)</tr>', html, re.S)
        assert row is not None and f'<td class="num groups">{c.n_groups}</td>' in row.group(1)
    assert 'href="/index.json"' in html and "cypher/class_index_page.cypher" in html


def test_index_search_sort_and_paging(client, conn, monkeypatch: pytest.MonkeyPatch) -> None:
    by_index = client.get("/index.json", params={"q": "5"}).json()["classes"]
    assert [c["class_id"] for c in by_index] == ["digits/5"]
    by_id = client.get("/index.json", params={"q": "digits-vit/3"}).json()["classes"]
    assert [c["class_id"] for c in by_id] == ["digits-vit/3"]
    html = client.get("/", params={"q": "8"}).text
    assert 'data-class="digits/8"' in html and 'data-class="digits/3"' not in html
    expected = sorted(fetch_class_index(conn), key=lambda c: (-(c.n_groups or 0), c.model, c.index))
    ranked = client.get("/index.json", params={"sort": "groups"}).json()["classes"]
    assert [c["class_id"] for c in ranked] == [c.class_id for c in expected]
    reverse = client.get("/index.json", params={"sort": "-index"}).json()["classes"]
    assert [c["class_id"] for c in reverse] == sorted(CLASSES, key=lambda c: (c.split("/")[0], int(c.split("/")[1])),
                                                       reverse=True)
    monkeypatch.setattr(pages, "PAGE_SIZE", 3)
    first, second = (client.get("/index.json", params={"page": p}).json() for p in (1, 2))
    assert first["pages"] == second["pages"] == 2
    paged = [c["class_id"] for c in first["classes"] + second["classes"]]
    assert paged == [c.class_id for c in fetch_class_index(conn)]
    assert client.get("/index.json", params={"sort": "colour"}).status_code == 404


@pytest.mark.parametrize("class_id", CLASSES)
def test_class_page_shows_the_helpers_answers(client, conn, class_id: str) -> None:
    circuit = fetch_class_circuit(conn, class_id)
    data = client.get(f"/class/{class_id}.json").json()
    assert (data["n_groups"], data["n_edges"]) == (len(circuit.groups), len(circuit.edges))
    assert data["run"]["run_id"] == circuit.run_id
    assert [g["id"] for g in data["groups"]] == [g.id for g in circuit.groups]
    bias = fetch_bias_paths(conn, class_id, limit=10)
    assert [(p["groups"], p["strength"]) for p in data["bias_paths"]] == [(list(p.groups), p.strength) for p in bias]
    pairs = fetch_shared_groups(conn, min_jaccard=pages.SHARED_MIN_JACCARD, cls=class_id, limit=1000)
    sharing: dict[str, set[str]] = {}
    for p in pairs:
        mine, other = (p.group_a, p.class_b) if p.class_a == class_id else (p.group_b, p.class_a)
        sharing.setdefault(other, set()).add(mine)
    assert {s["class_id"]: s["shared_groups"] for s in data["sharing_classes"]} == \
        {k: len(v) for k, v in sharing.items()}
    assert "svg" not in data and {q["name"] for q in data["cypher"]} >= {"circuit_groups", "circuit_edges",
                                                                          "faithfulness"}
    faith = fetch_faithfulness(conn, class_id)
    if faith:
        assert data["faithfulness"]["verdict"] == faith[0].verdict
        assert [(r["layer"], r["logit_z"], r["kept_z"]) for r in data["faithfulness"]["layers"]] == \
            [(r.layer, r.logit_z, r.kept_z) for r in faith]
    else:
        assert data["faithfulness"] is None

    html = client.get(f"/class/{class_id}").text
    assert f'<span id="n-groups">{len(circuit.groups)}</span>' in html
    assert f'<span id="n-edges">{len(circuit.edges)}</span>' in html
    faithful = client.get(f"/class/{class_id}/faithfulness").text  # a later section: fetched by the page's script
    assert f'data-src="/class/{class_id}/faithfulness"' in html and f'href="/class/{class_id}/faithfulness"' in html
    trust = re.search(r'<p class="meta" id="trust">(.*?)</p>', faithful, re.S).group(1)
    assert (f"<b>{faith[0].verdict}</b>" in trust) if faith else ("not measured" in trust)
    assert len(re.findall(r"<tr><td>[^<]+</td><td class=\"num\">\d+ / \d+</td>", faithful)) == len(faith)
    drawn = set(_ids(html, "data-group"))
    assert drawn == {g.group_id for g in circuit.groups}  # every layer of these runs is narrower than MAX_GROUPS
    edges = re.findall(r'data-child="([^"]*)" data-parent="([^"]*)"', html)
    assert len(edges) == len(circuit.edges) and {c for pair in edges for c in pair} <= drawn
    for g in circuit.groups:
        assert f'<a href="/group/{g.id}">' in html  # clicking a group opens it
    assert "cypher/circuit_groups.cypher" in html and f":params {{&#34;class_id&#34;: &#34;{class_id}&#34;" in html
    assert 'href="/static/serve.js"' not in html and 'src="/static/serve.js"' in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert client.get("/static/serve.js").status_code == 200


def test_the_class_page_sends_its_circuit_before_the_later_sections_run(conn) -> None:
    """The HTML class page runs only the circuit's queries; each later section is its own page (its numbers the
    helpers', its Cypher shown) and JSON twin, and the JSON twin of the class page still holds them all."""
    class_id = "digits/5"
    run_id = fetch_class_circuit(conn, class_id).run_id
    helpers = {"bias": lambda r: fetch_bias_paths(r, class_id, limit=10),
               "sharing": lambda r: fetch_shared_groups(r, min_jaccard=pages.SHARED_MIN_JACCARD, cls=class_id,
                                                        limit=1000),
               "faithfulness": lambda r: fetch_faithfulness(r, class_id),
               "results": lambda r: (fetch_interventions(r, class_id), fetch_evaluations(r, run_id))}
    later: dict[str, set[str]] = {}
    for section, helper in helpers.items():  # the queries each section's helpers run, beyond resolving the class
        probe = ReadOnly(conn)
        helper(probe)
        later[section] = set(probe.ran) - {"class_info", "class_runs"}
        assert later[section]
    runner = ReadOnly(conn)
    with TestClient(create_app(runner), raise_server_exceptions=True) as client:
        html = client.get(f"/class/{class_id}").text
        first = set(runner.ran)
        assert {"circuit_groups", "circuit_edges"} <= first
        assert not first & set().union(*later.values())  # none of the later sections' queries ran
        for section, names in later.items():
            assert re.search(rf'<section id="{section}" class="later" data-src="/class/{class_id}/{section}">', html)
            runner.ran.clear()
            part = client.get(f"/class/{class_id}/{section}")
            assert part.status_code == 200 and f'<section id="{section}">' in part.text
            assert names <= set(runner.ran) and "circuit_edges" not in runner.ran  # only the section's reads
            assert all(f"cypher/{n}.cypher" in part.text for n in names)
            twin = client.get(f"/class/{class_id}/{section}.json").json()
            assert {q["name"] for q in twin["cypher"]} >= names and twin["section"] == section
        whole = client.get(f"/class/{class_id}.json").json()
        assert whole["sections"] == {}
    bias = client_json(conn, f"/class/{class_id}/bias.json")["bias_paths"]
    expected = fetch_bias_paths(conn, class_id, limit=10)
    assert [(p["groups"], p["strength"]) for p in bias] == [(list(p.groups), p.strength) for p in expected]
    assert [p["links"] for p in bias] == [[f"/group/{run_id}/{g}" for g in p.groups] for p in expected]
    assert client_json(conn, f"/class/{class_id}/sharing.json")["sharing_classes"] == whole["sharing_classes"]
    faith = client_json(conn, f"/class/{class_id}/faithfulness.json")["faithfulness"]
    assert faith == whole["faithfulness"]
    results = client_json(conn, f"/class/{class_id}/results.json")
    assert (results["interventions"], results["evaluations"]) == (whole["interventions"], whole["evaluations"])


def client_json(conn, url: str) -> dict:
    with app_client(conn) as client:
        return client.get(url).json()


def test_an_unknown_section_is_a_404(client) -> None:
    answer = client.get("/class/digits/5/colour")
    assert answer.status_code == 404 and "bias, sharing, faithfulness, results" in answer.text
    assert client.get("/class/digits/5/colour.json").json()["status"] == 404
    assert client.get("/class/digits/9/bias").status_code == 404


def test_a_class_ingested_with_defaults_shows_its_faithfulness(client, conn) -> None:
    """digits-vit/3 was stored by `ingest` with its defaults, which measure faithfulness: the page shows it."""
    faith = fetch_faithfulness(conn, "digits-vit/3")
    run = fetch_run_info(conn, fetch_class_circuit(conn, "digits-vit/3").run_id)
    assert [r.layer for r in faith] == list(run.layers[1:])  # every layer below the logit
    data = client.get("/class/digits-vit/3.json").json()["faithfulness"]
    assert data["verdict"] == faith[0].verdict and len(data["layers"]) == len(faith)


def test_class_page_of_a_named_run_and_top(client, conn) -> None:
    circuit = fetch_class_circuit(conn, "digits/3", top_n=1)
    data = client.get("/class/digits/3.json", params={"run": circuit.run_id, "top": 1}).json()
    assert data["n_edges"] == len(circuit.edges) and data["top"] == 1
    assert client.get("/class/digits/3.json", params={"run": "digits-c3-0000000000"}).status_code == 404
    html = client.get("/class/digits/3", params={"run": circuit.run_id}).text
    assert f'data-src="/class/digits/3/bias?run={circuit.run_id}"' in html  # the sections read the same run
    assert client.get("/class/digits/3/bias.json", params={"run": circuit.run_id}).json()["run_id"] == circuit.run_id
    assert client.get("/class/digits/3/bias", params={"run": "digits-c3-0000000000"}).status_code == 404


def test_group_page_shows_members_exemplars_edges_and_shares(client, conn) -> None:
    circuit = fetch_class_circuit(conn, "digits/3")
    with_shares = 0
    for g in circuit.groups:
        data = client.get(f"/group/{g.id}.json").json()
        assert data["group"]["group_id"] == g.group_id and [n["id"] for n in data["neurons"]] == list(g.neurons)
        assert [e["patch_id"] for e in data["exemplars"]] == [e.patch_id for e in fetch_exemplars(conn, g.id)]
        parents = {(e.parent, e.weight) for e in circuit.edges if e.child == g.group_id}
        assert {(p["group_id"], p["weight"]) for p in data["parents"]} == parents
        children = {(e.child, e.weight) for e in circuit.edges if e.parent == g.group_id}
        assert {(c["group_id"], c["weight"]) for c in data["children"]} == children
        shares = fetch_group_shares(conn, g.id)
        assert [(s["id"], s["jaccard"]) for s in data["shares"]] == [(s.id, s.jaccard) for s in shares]
        assert all(s["class_id"] != "digits/3" for s in data["shares"])
        with_shares += bool(shares)
        html = client.get(f"/group/{g.id}").text
        assert f'<span id="n-neurons">{len(g.neurons)}</span>' in html
        for s in shares:
            assert f'href="/class/{s.class_id}"' in html and f'href="/group/{s.id}"' in html
        for e in data["exemplars"]:  # every thumbnail the page shows is served, byte for byte
            assert e["url"] is not None
            shot = client.get(e["url"])
            assert shot.status_code == 200 and shot.content == Path(e["path"]).read_bytes()
    assert with_shares > 0  # digits 3, 5 and 8 share neurons somewhere


def test_neuron_page_lists_its_roles_and_concept_patches(client, conn) -> None:
    circuit = fetch_class_circuit(conn, "digits/3")
    neuron = next(n for g in circuit.groups if not g.is_root and g.layer_index == 1 for n in g.neurons)
    data = client.get(f"/neuron/{neuron}.json").json()
    roles = fetch_neuron_roles(conn, neuron)
    assert [(r["class_id"], r["semantic_group"]) for r in data["roles"]] == \
        [(r.class_id, r.semantic_group) for r in roles]
    concepts = {(r.run_id, r.semantic_group): r.n_patches for r in roles if r.semantic_group}
    assert {(c["run_id"], c["semantic_group"]): c["n_patches"] for c in data["concepts"]} == concepts
    assert all(0 < len(c["patches"]) <= min(6, c["n_patches"]) for c in data["concepts"])
    shown = [p for c in data["concepts"] for p in c["patches"]]
    assert all(p["url"].startswith("/thumb/" if p["thumbnail"] else "/crop/") for p in shown)
    cut = next(p["url"] for p in shown if not p["thumbnail"])  # a patch without a thumbnail: cut from its image
    answer = client.get(cut)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(answer.content)) as picture:
        assert picture.size == (64, 64)
    path, _, box = cut.partition("?box=")
    x0, y0, x1, y1 = (int(v) for v in box.split(","))
    for bad in (f"{x1},{y0},{x0},{y1}", f"{x0},{y0},{x1 + 1000},{y1}", "1,2,3", "a,b,c,d"):
        assert client.get(f"{path}?box={bad}").status_code == 404, bad
    run = path.split("/")[2]
    assert client.get(f"/crop/{run}/../digits-5/images/0.png?box={box}").status_code == 404
    assert client.get(f"/crop/{run}/run.json?box={box}").status_code == 404
    html = client.get(f"/neuron/{neuron}").text
    for r in roles:
        assert f'href="/group/{r.group_node}"' in html


def test_compare_shows_the_shared_groups_of_both_classes(client, conn) -> None:
    pairs = [p for p in fetch_shared_groups(conn, min_jaccard=pages.SHARED_MIN_JACCARD, cls="digits/3", limit=1000)
             if {p.class_a, p.class_b} == {"digits/3", "digits/5"}]
    data = client.get("/compare.json", params={"a": "digits/3", "b": "digits/5"}).json()
    assert sorted((r["a"]["id"], r["b"]["id"], r["jaccard"]) for r in data["pairs"]) == sorted(
        ((p.group_a, p.group_b) if p.class_a == "digits/3" else (p.group_b, p.group_a)) + (p.jaccard,) for p in pairs)
    assert all(r["a"]["id"].startswith("digits-c3-") and r["b"]["id"].startswith("digits-c5-") for r in data["pairs"])
    html = client.get("/compare", params={"a": "digits/3", "b": "5"}).text  # an index names a class too
    assert f'<span id="n-pairs">{len(pairs)}</span>' in html
    marked = {unescape(m) for m in re.findall(r'class="node shared" data-group="[^"]*" data-id="([^"]*)"', html)}
    assert marked == {r["a"]["id"] for r in data["pairs"]} | {r["b"]["id"] for r in data["pairs"]}


@pytest.mark.parametrize("url", [
    "/class/digits/9", "/class/nomodel/1", "/group/digits-c3-0000000000/conv2/g0", "/neuron/digits/conv9/1",
    "/run/digits-c3-0000000000", "/compare?a=digits/3&b=digits/9", "/compare?a=digits/3", "/no/such/page",
])
def test_unknown_things_are_404_pages_with_a_way_back(client, url: str) -> None:
    page = client.get(url)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'href="/">Back to the classes</a>' in page.text and "Traceback" not in page.text
    path, _, query = url.partition("?")
    twin = client.get(path + ".json" + (f"?{query}" if query else ""))
    assert twin.status_code == 404 and twin.json()["status"] == 404 and twin.json()["error"]


def test_thumbnails_come_only_from_inside_the_bundle(client, conn, tmp_path: Path) -> None:
    circuit = fetch_class_circuit(conn, "digits/3")
    run = circuit.run_id
    ok = next(e for g in circuit.groups for e in g.exemplars if e.path is not None)
    assert client.get(f"/thumb/{run}/{ok.thumbnail}").status_code == 200
    for bad in ("run.json", "../digits-5/run.json", "thumbnails/../../digits-5/thumbnails/p1.png",
                "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "thumbnails/none.png"):
        assert client.get(f"/thumb/{run}/{bad}").status_code == 404, bad
    assert client.get(f"/thumb/digits-c3-0000000000/{ok.thumbnail}").status_code == 404
    bundle = tmp_path / "bundle"
    (bundle / "thumbnails").mkdir(parents=True)
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not for you")
    (bundle / "thumbnails" / "link.png").symlink_to(outside)
    (bundle / "thumbnails" / "p1.png").write_bytes(b"png")
    assert inside_bundle(str(bundle), "thumbnails/link.png") is None  # a link leading out is not followed out
    assert inside_bundle(str(bundle), "../secret.png") is None
    assert inside_bundle(str(bundle), "thumbnails/p1.png") == (bundle / "thumbnails" / "p1.png").resolve()
    assert inside_bundle(None, "thumbnails/p1.png") is None


@pytest.fixture
def moved_store(stored: Path, digits_bundle_dirs, tmp_path: Path, request: pytest.FixtureRequest):
    """Digit 5 loaded into a database of its own from a copy of its bundle; the copy then moved away."""
    copy = tmp_path / "bundle-copy"
    shutil.copytree(digits_bundle_dirs(5), copy)
    database = "moved_" + re.sub(r"\W", "_", request.node.name)[:40]
    with connect(stored, database=database) as conn:
        write_run_graph(conn.driver, conn.database, copy)
        copy.rename(tmp_path / "elsewhere")
        yield conn, copy


def test_a_moved_bundle_gives_placeholders_saying_where_it_looked(moved_store) -> None:
    conn, copy = moved_store
    circuit = fetch_class_circuit(conn, "digits/5")
    with app_client(conn) as client:
        html = client.get("/class/digits/5").text
        assert 'id="missing-note"' in html and str(copy) in html and "<image " not in html
        assert html.count('class="missing"') == sum(min(len(g.exemplars), 3) for g in circuit.groups)
        group = next(g for g in circuit.groups if g.exemplars)
        page = client.get(f"/group/{group.id}").text
        assert "not found: looked under" in page and str(copy) in page and "<img " not in page


def test_a_label_holding_a_script_is_shown_as_text(moved_store) -> None:
    conn, _ = moved_store
    circuit = fetch_class_circuit(conn, "digits/5")
    group = next(g for g in circuit.groups if not g.is_root)
    evil = '<script>alert("x")</script>'
    write_group_label(conn, group.id, label=evil, description=f"about {evil}", model="test", prompt_version="1",
                      key="k")
    with app_client(conn) as client:
        for url in (f"/group/{group.id}", "/class/digits/5"):
            html = client.get(url).text
            assert evil not in html and "&lt;script&gt;alert(" in html
            assert html.count("<script") == 1  # the app's own serve.js only
        assert client.get(f"/group/{group.id}.json").json()["group"]["label"] == evil  # JSON keeps the text


def test_a_wide_layer_shows_its_strongest_groups_and_a_show_all_link(client, conn, monkeypatch) -> None:
    circuit = fetch_class_circuit(conn, "digits/5")
    widest = max(len(groups) for _, groups in circuit.layers())
    monkeypatch.setattr(pages, "MAX_GROUPS", widest - 1)  # as a layer of 15+ groups meets the default
    data = client.get("/class/digits/5.json").json()
    hidden = sum(data["hidden"].values())
    assert hidden > 0 and data["drawn_groups"] == len(circuit.groups) - hidden
    html = client.get("/class/digits/5").text
    assert 'id="hidden-note"' in html and 'id="show-all" href="?all=1"' in html
    assert len(set(_ids(html, "data-group"))) == data["drawn_groups"]
    every = client.get("/class/digits/5", params={"all": "1"}).text
    assert len(set(_ids(every, "data-group"))) == len(circuit.groups) and 'id="hidden-note"' not in every
