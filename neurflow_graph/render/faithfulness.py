"""How far to trust a circuit, drawn next to it: a plain-words verdict and the per-layer figures of run.json
``faithfulness`` (measured at ingest, docs/results.md), as an HTML section and as one line of text."""

from __future__ import annotations

import html
from typing import Any

from neurflow_graph.engine.meta import FaithfulnessMeta
from neurflow_graph.records import Run


def section_of(run: Run | None) -> FaithfulnessMeta | None:
    """The run's stored faithfulness section, or None when it was not measured (or the run is unknown)."""
    return run.meta.faithfulness if run is not None and run.meta is not None else None


def layer_verdict(row: dict[str, Any]) -> str:
    """One layer in words: whether masking its core does more than masking random sets of the same size."""
    if row["n_core"] >= row["width"]:
        return "core is the whole layer: nothing to compare"
    if row["beats_random"]:
        return "core beats random"
    if row["logit_z"] >= 2:
        return "masking beats random, retaining does not"
    return "no better than random"


def faithfulness_text(run: Run | None) -> str:
    """One line for the terminal: the verdict, the weakest layer and its z, or why there is none."""
    faith = section_of(run)
    if faith is None:
        return "faithfulness: not measured for this run (ingest it with --faithfulness layers)"
    return (f"faithfulness: {faith.verdict}; weakest layer {faith.weakest_layer} "
            f"(z {faith.weakest_z:.1f}, {faith.sets} random sets, seed {faith.seed})")


def faithfulness_html(run: Run | None) -> str:
    """The page's "How far to trust it" section: verdict in words, then one table row per layer ("" without a run)."""
    esc = html.escape
    faith = section_of(run)
    if run is None:
        return ""  # the page was drawn without its run (a notebook's circuit): nothing known either way
    if faith is None:
        return ('<p class="note">Faithfulness was not measured for this run (ingest it with '
                "<code>--faithfulness layers</code>).</p>")
    rows = []
    for r in faith.layers:
        rows.append(
            f"<tr><td>{esc(r['layer'])}</td><td class='num'>{r['n_core']} / {r['width']}</td>"
            f"<td class='num'>{r['logit_drop']:.3g}</td>"
            f"<td class='num'>{r['random_logit_drop_mean']:.3g} ± {r['random_logit_drop_std']:.2g}</td>"
            f"<td class='num'>{r['logit_z']:.1f}</td><td class='num'>{r['kept_share']:.2f}</td>"
            f"<td class='num'>{r['random_kept_share_mean']:.2f} ± {r['random_kept_share_std']:.2f}</td>"
            f"<td class='num'>{r['kept_z']:.1f}</td><td>{esc(layer_verdict(r))}</td></tr>")
    return (f'<h2 style="font-size:16px;margin-top:22px">How far to trust it</h2>'
            f'<p class="meta"><b>{esc(faith.verdict)}</b>. Weakest layer {esc(faith.weakest_layer)} '
            f"(z {faith.weakest_z:.1f}). Each layer's core neurons were masked, and kept alone, on the run's "
            f"{faith.layers[0]['n_images']} images, against {faith.sets} random sets of the same size from "
            f"the same layer (seed {faith.seed}); z is the core's distance from the random mean in standard "
            f"deviations, and core beats random at z ≥ {faith.z_beats:g} both ways.</p>"
            "<table><tr><th>layer</th><th>core / width</th><th>logit drop (core)</th><th>logit drop (random)</th>"
            "<th>z</th><th>logit kept (core only)</th><th>logit kept (random)</th><th>z</th><th>verdict</th></tr>"
            f"{''.join(rows)}</table>")
