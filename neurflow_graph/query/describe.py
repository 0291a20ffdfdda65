"""A stored run as text: what `ingest` prints once a class is in the store (read back from the graph)."""

from __future__ import annotations

from neurflow_graph.query.library import Runner, run_query


def describe_stored_run(conn: Runner, run_id: str, class_id: str, top: int = 3) -> str:
    """What a run holds in the graph (read back from it), its circuit as text, and a query to paste."""
    (counts,) = run_query(conn, "run_counts", run_id=run_id)
    nodes = {k: counts[k] for k in ("neurons", "patches", "semantic_groups", "neuron_groups")}
    rels = {k: counts[k] for k in ("hyperedges", "group_edges", "memberships", "in_group", "exemplars",
                                   "has_semantic_group", "logit_of")}
    lines = [f"stored run {run_id} (complete: {counts['complete']})",
             "  nodes: " + ", ".join(f"{k} {v}" for k, v in nodes.items()),
             "  relationships: " + ", ".join(f"{k} {v}" for k, v in rels.items()),
             f"circuit of {class_id} (strongest {top} inputs of each group, weight = summed hyper-edge weights):"]
    faith = run_query(conn, "faithfulness", class_id=class_id, run_id=run_id)
    if faith:
        lines.insert(3, f"  faithfulness: {faith[0]['verdict']}; z (mask / retain) by layer: "
                        + ", ".join(f"{r['layer']} {r['logit_z']:.1f}/{r['kept_z']:.1f}" for r in faith))
    edges = [e for e in run_query(conn, "circuit_of_class", class_id=class_id) if e["run_id"] == run_id]
    by_parent: dict[str, list[dict]] = {}
    for edge in edges:
        by_parent.setdefault(edge["parent"], []).append(edge)
    for parent in sorted(by_parent, key=lambda g: (by_parent[g][0]["parent_layer_index"], g)):
        inputs = sorted(by_parent[parent], key=lambda e: -abs(e["weight"]))
        shown = ", ".join(f"{e['child']} {e['weight']:+.2f}" for e in inputs[:top])
        more = f" (+{len(inputs) - top} more)" if len(inputs) > top else ""
        lines.append(f"  {parent:<16} <- {shown}{more}")
    lines.append("a query that draws it (paste into Neo4j Browser or any Cypher client):")
    lines.append(f'  MATCH (root:NeuronGroup {{run_id: "{run_id}"}})-[:LOGIT_OF]->(:Class) '
                 "MATCH p = (:NeuronGroup)-[:FEEDS*1..]->(root) RETURN p")
    return "\n".join(lines)
