"""A run bundle as text: what `run` and `ingest` print once a class is computed."""

from __future__ import annotations

from collections import Counter

from neurflow_graph import ids
from neurflow_graph.engine.pipeline import Bundle


def describe_bundle(bundle: Bundle) -> str:
    """Neurons, semantic groups, neuron groups and edges per layer, and seconds per stage."""
    circuit, groups = bundle.circuit, bundle.groups
    group_count = Counter(g.layer for g in groups.groups)
    edge_count = Counter(ids.group_layer(e.child) for e in groups.edges)
    meta = bundle.meta
    stats = meta.layer_stats
    lines = [f"run {meta.run_id}: class {meta.class_index} ({meta.class_name}), "
             f"{meta.images.kept} images, {len(bundle.patches)} patches"]
    header = f"  {'layer':<14}{'neurons':>8}{'sem.groups':>11}{'groups':>7}{'hyperedges':>11}{'edges up':>12}" \
             f"{'IG steps':>9}{'complet.err':>12}{'seconds':>9}"
    lines.append(header)
    for li, layer in enumerate(circuit.layers):
        n = len(circuit.neurons(li))
        if li < len(circuit.transitions):
            tr = circuit.transitions[li]
            s = stats[layer]
            extra = (f"{int(tr.n_semantic_groups.sum()):>11}{group_count[layer]:>7}{len(tr.edge_child):>11}"
                     f"{edge_count[layer]:>12}{s.n_steps:>9}{s.completeness_error:>12.2e}{s.seconds:>9.1f}")
        else:
            extra = f"{'-':>11}{'-':>7}{'-':>11}{'-':>12}{'':>9}{'':>12}{'':>9}   (leaves)"
        lines.append(f"  {layer:<14}{n:>8}{extra}")
    stages = meta.stage_seconds
    lines.append("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
    faith = meta.faithfulness
    if faith:
        circuit = sum(v for k, v in stages.items() if k != "faithfulness")
        cost = stages.get("faithfulness", 0.0)
        lines.append(f"  faithfulness ({faith.level}, {faith.sets} random sets, seed {faith.seed}): "
                     f"{faith.verdict}; weakest {faith.weakest_layer} z {faith.weakest_z:.1f}; "
                     f"cost {cost:.1f}s, {100 * cost / max(circuit, 1e-9):.1f}% of the circuit")
    return "\n".join(lines)
