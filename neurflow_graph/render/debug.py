"""Pages of an image-debugging result: an index (every group, and the metric scores of the images), one HTML page
and one PNG per group (its exemplar patches, its metric scores, masking against random masks, top-drop images).
All self-contained: images inline as base64 data URIs, charts as inline SVG (HTML) or drawn with PIL (PNG).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from neurflow_graph.debugging.core import DebugResult, GroupDebug
from neurflow_graph.ids import slug
from neurflow_graph.render.images import PLACEHOLDER_GREY, file_uri, load_thumbnail, tensor_to_pil, tensor_uri

GROUP_COLOUR = "#2b6cb0"
RANDOM_COLOUR = "#a0aec0"
FP_COLOUR = "#c53030"
MATRIX_ROWS = 24


def write_debug_pages(result: DebugResult, out_dir: str | os.PathLike[str], *, class_name: str = "",
                      image_set: str = "", exemplars: Mapping[str, Sequence[Path | None]] | None = None,
                      intervention_ids: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write index.html, report.json and group-*.html / group-*.png under `out_dir`; returns them by name.

    `exemplars` maps a group id to its exemplar thumbnail files (None for a missing one: a grey box).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exemplars = exemplars or {}
    ids = intervention_ids or {}
    written: dict[str, Path] = {}
    for group in result.groups:
        stem = slug(group.group.group_id, "-")
        page = out / f"group-{stem}.html"
        page.write_text(_group_page(result, group, class_name, image_set, exemplars.get(group.group.group_id, ()),
                                    ids.get(group.group.group_id)), encoding="utf-8")
        written[page.name] = page
        png = out / f"group-{stem}.png"
        render_group_png(result, group, exemplars.get(group.group.group_id, ()), class_name).save(png)
        written[png.name] = png
    index = out / "index.html"
    index.write_text(_index_page(result, class_name, image_set), encoding="utf-8")
    written[index.name] = index
    report = out / "report.json"
    report.write_text(json.dumps(report_json(result, image_set, ids), indent=2), encoding="utf-8")
    written[report.name] = report
    return written


def report_json(result: DebugResult, image_set: str = "", ids: Mapping[str, str] | None = None) -> dict:
    """The numbers of a result as plain JSON (what the pages show)."""
    ids = ids or {}
    return {
        "run_id": result.run_id, "class_index": result.class_index, "layer": result.layer,
        "layer_width": result.layer_width, "image_set": image_set, "n_images": int(result.images.shape[0]),
        "seeds": result.seeds, "seed": result.seed, "eps": result.eps, "sources": list(result.sources),
        "labels": list(result.labels) if result.labels is not None else None,
        "false_positives": result.false_positives.tolist(),
        "base_logit": result.logit.tolist(), "base_prob": result.prob.tolist(),
        "groups": [{
            "group_id": g.group.group_id, "intervention_id": ids.get(g.group.group_id), "label": g.group.label,
            "channels": list(g.group.channels), "weight_up": g.group.weight_up, "metric": g.metric.tolist(),
            "logit_drop": g.logit_drop.tolist(), "prob_drop": g.prob_drop.tolist(),
            "mean_logit_drop": g.mean_logit_drop, "mean_prob_drop": g.mean_prob_drop, "flipped": g.flipped,
            "random_sets": [list(s) for s in g.random_sets], "random_logit_drop": g.random_logit_drop.tolist(),
            "random_prob_drop": g.random_prob_drop.tolist(), "random_flipped": g.random_flipped.tolist(),
            "share_random_worse": g.share_random_worse, "top_images": list(g.top_images),
        } for g in result.groups],
    }


# -- HTML -----------------------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a202c; margin: 24px;
  max-width: 1180px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 8px; }
.meta { color: #4a5568; margin: 0 0 10px; }
table { border-collapse: collapse; font-size: 13px; } th, td { padding: 3px 9px; border-bottom: 1px solid #e2e8f0;
  text-align: left; vertical-align: middle; } th { background: #f7fafc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.strip { display: flex; flex-wrap: wrap; gap: 8px; } .strip figure { margin: 0; text-align: center; font-size: 11px;
  color: #4a5568; } .strip img { width: 72px; height: 72px; image-rendering: pixelated; border: 1px solid #cbd5e0;
  display: block; } .strip .fp img { border: 2px solid #c53030; } .grey { width: 72px; height: 72px;
  background: #ccc; display: block; }
.good { color: #276749; font-weight: 600; } .bad { color: #9b2c2c; font-weight: 600; }
svg text { font-family: system-ui, sans-serif; font-size: 11px; }
"""


def _img(uri: str | None, title: str = "") -> str:
    if uri is None:
        return f'<span class="grey" title="{html.escape(title or "thumbnail not found")}"></span>'
    return f'<img src="{uri}" alt="{html.escape(title)}" title="{html.escape(title)}">'


def _verdict(group: GroupDebug) -> str:
    margin = group.mean_prob_drop - float(group.random_prob_drop.mean())
    cls = "good" if margin > 0 else "bad"
    word = "more" if margin > 0 else "less"
    return (f'<span class="{cls}">masking it lowers the class probability {abs(margin):.3f} {word} than random '
            f"sets of {len(group.group.channels)} neurons</span> (beats {group.share_random_worse:.0%} of the "
            f"{len(group.random_prob_drop)} random draws)")


def _drop_chart(group: GroupDebug) -> str:
    """SVG bars: mean probability drop of the group and of each random draw."""
    values = [("group", group.mean_prob_drop, GROUP_COLOUR)] + [
        (f"random {k}", float(v), RANDOM_COLOUR) for k, v in enumerate(group.random_prob_drop)]
    top = max([abs(v) for _, v, _ in values] + [1e-9])
    bar_w, gap, h, base = 34, 10, 120, 140
    width = len(values) * (bar_w + gap) + 60
    parts = [f'<svg width="{width}" height="{base + 20}" role="img" aria-label="probability drop">',
             f'<line x1="40" x2="{width}" y1="{base - h / 2:.0f}" y2="{base - h / 2:.0f}" stroke="#718096"/>',
             f'<text x="0" y="{base - h / 2 + 4:.0f}">0</text>',
             f'<text x="0" y="14">+{top:.3f}</text>']
    zero = base - h / 2
    for k, (name, value, colour) in enumerate(values):
        x = 44 + k * (bar_w + gap)
        length = value / top * (h / 2)
        y = zero - max(length, 0)
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bar_w}" height="{abs(length):.1f}" fill="{colour}">'
                     f"<title>{html.escape(name)}: {value:+.4f}</title></rect>")
        parts.append(f'<text x="{x + bar_w / 2}" y="{base + 14}" text-anchor="middle">'
                     f'{"G" if k == 0 else f"r{k - 1}"}</text>')
    parts.append("</svg><p class='meta'>Mean drop of the class probability: G = the group, r0… = random sets of "
                 "the same size from the same layer (one per seed).</p>")
    return "".join(parts)


def _metric_chart(result: DebugResult, group: GroupDebug) -> str:
    """SVG: the metric of every image, sorted, false positives in red."""
    order = np.argsort(-group.metric, kind="stable")
    fps = set(result.false_positives.tolist())
    n = len(order)
    bar = max(2.0, min(14.0, 900 / max(n, 1)))
    width, h = int(n * bar + 50), 110
    top = max(float(group.metric.max()), 1e-9)
    parts = [f'<svg width="{width}" height="{h + 30}" role="img" aria-label="metric scores">',
             f'<text x="0" y="12">{top:.2f}</text><text x="0" y="{h}">0</text>']
    for k, i in enumerate(order):
        value = float(group.metric[i])
        length = value / top * (h - 10)
        colour = FP_COLOUR if int(i) in fps else GROUP_COLOUR
        parts.append(f'<rect x="{40 + k * bar:.1f}" y="{h - length:.1f}" width="{max(bar - 1, 1):.1f}" '
                     f'height="{length:.1f}" fill="{colour}"><title>{html.escape(result.sources[i])}: '
                     f"M = {value:.4f}</title></rect>")
    parts.append(f'<text x="40" y="{h + 22}">M(v, S_G) of each image, highest first'
                 + (" (red: false positives)" if fps else "") + "</text></svg>")
    return "".join(parts)


def _image_figure(result: DebugResult, i: int, caption: str) -> str:
    fp = i in set(result.false_positives.tolist())
    label = f" · label {result.labels[i]}" if result.labels is not None else ""
    title = f"{result.sources[i]}{label}"
    return (f'<figure class="{"fp" if fp else ""}">{_img(tensor_uri(result.images[i]), title)}'
            f"<figcaption>{html.escape(caption)}{' · FP' if fp else ''}</figcaption></figure>")


def _group_page(result: DebugResult, group: GroupDebug, class_name: str, image_set: str,
                exemplars: Sequence[Path | None], intervention: str | None) -> str:
    esc = html.escape
    g = group.group
    name = g.label or g.group_id
    subtitle = ("" if name == g.group_id else f"{g.group_id}, ") + f"class {class_name or result.class_index}"
    ex = "".join(f"<figure>{_img(file_uri(p), 'exemplar patch')}</figure>" for p in exemplars) \
        or "<p class='meta'>no exemplar thumbnails</p>"
    tops = "".join(_image_figure(result, i, f"Δlogit {group.logit_drop[i]:+.2f}") for i in group.top_images)
    rows = "".join(
        f"<tr><td>{esc(result.sources[i])}</td><td class='num'>{result.logit[i]:.3f}</td>"
        f"<td class='num'>{group.logit_drop[i]:+.3f}</td><td class='num'>{result.prob[i]:.3f}</td>"
        f"<td class='num'>{group.prob_drop[i]:+.3f}</td><td class='num'>{group.metric[i]:.3f}</td></tr>"
        for i in group.top_images)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(name)} — image debugging</title>
<style>{_STYLE}</style></head><body>
<p class="meta"><a href="index.html">← all groups of {esc(result.layer)}</a></p>
<h1>{esc(name)} <span class="meta">({esc(subtitle)})</span></h1>
<p class="meta">{esc(g.description or '')}</p>
<p class="meta">run <code>{esc(result.run_id or '')}</code> · {len(g.channels)} neurons: channels
{esc(', '.join(str(c) for c in g.channels))} · feeds the layer above with weight {g.weight_up:+.3f}
{f' · stored as <code>{esc(intervention)}</code>' if intervention else ''}</p>
<h2>Exemplar patches</h2><div class="strip">{ex}</div>
<h2>Masking the group</h2>
<p>Mean drop of the class logit {group.mean_logit_drop:+.3f} (random: {group.random_logit_drop.mean():+.3f} ±
{group.random_logit_drop.std():.3f}); of the class probability {group.mean_prob_drop:+.4f} (random:
{group.random_prob_drop.mean():+.4f} ± {group.random_prob_drop.std():.4f}); {group.flipped} image(s) no longer
predicted as the class (random: {group.random_flipped.mean():.1f}). {_verdict(group)}.</p>
{_drop_chart(group)}
<h2>Group-confidence metric on {esc(image_set or 'the images')}</h2>
{_metric_chart(result, group)}
<h2>Images whose logit drops most when the group is masked</h2>
<div class="strip">{tops}</div>
<table style="margin-top:10px"><tr><th>image</th><th>logit</th><th>Δ logit</th><th>probability</th>
<th>Δ probability</th><th>M(v, S_G)</th></tr>{rows}</table>
</body></html>
"""


def _index_page(result: DebugResult, class_name: str, image_set: str) -> str:
    esc = html.escape
    rows = []
    for group in result.groups:
        g = group.group
        stem = slug(g.group_id, "-")
        rows.append(
            f"<tr><td><a href='group-{stem}.html'>{esc(g.group_id)}</a></td><td>{esc(g.label or '')}</td>"
            f"<td class='num'>{len(g.channels)}</td><td class='num'>{g.weight_up:+.3f}</td>"
            f"<td class='num'>{group.metric.mean():.3f}</td>"
            f"<td class='num'>{group.mean_prob_drop:+.4f}</td>"
            f"<td class='num'>{group.random_prob_drop.mean():+.4f} ± {group.random_prob_drop.std():.4f}</td>"
            f"<td class='num'>{group.mean_logit_drop:+.3f}</td>"
            f"<td class='num'>{group.random_logit_drop.mean():+.3f}</td>"
            f"<td class='num'>{group.flipped} / {group.random_flipped.mean():.1f}</td>"
            f"<td class='num'>{group.share_random_worse:.0%}</td></tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Image debugging — class {esc(class_name)}, {esc(result.layer)}</title>
<style>{_STYLE}</style></head><body>
<h1>Image debugging of class {esc(class_name or str(result.class_index))}, layer {esc(result.layer)}</h1>
<p class="meta">run <code>{esc(result.run_id or '')}</code> · {esc(image_set)} · {result.seeds} random draws per
group (seed {result.seed}) · layer width {result.layer_width}</p>
<h2>Neuron groups</h2>
<table><tr><th>group</th><th>label</th><th>neurons</th><th>weight up</th><th>mean M</th><th>Δ prob</th>
<th>Δ prob random</th><th>Δ logit</th><th>Δ logit random</th><th>flipped / random</th>
<th>beats random</th></tr>{"".join(rows)}</table>
<h2>Metric scores of the images for each group</h2>
{_matrix(result)}
</body></html>
"""


def _matrix(result: DebugResult) -> str:
    """Images (false positives first, then by their best score) × groups, each cell the metric M(v, S_G)."""
    scores = np.stack([g.metric for g in result.groups], axis=1)
    fps = result.false_positives.tolist()
    rest = [int(i) for i in np.argsort(-scores.max(axis=1), kind="stable") if int(i) not in set(fps)]
    order = (fps + rest)[:MATRIX_ROWS]
    top = max(float(scores.max()), 1e-9)
    head = "".join(f"<th>{html.escape(g.group.label or g.group.group_id)}</th>" for g in result.groups)
    body = []
    for i in order:
        cells = "".join(
            f"<td class='num' style='background: rgba(43,108,176,{min(scores[i, k] / top, 1):.2f})'>"
            f"{scores[i, k]:.3f}</td>" for k in range(len(result.groups)))
        fp = " (FP)" if i in fps else ""
        label = f" · label {result.labels[i]}" if result.labels is not None else ""
        body.append(f"<tr><td><img style='width:36px;height:36px;image-rendering:pixelated' "
                    f"src='{tensor_uri(result.images[i], 48)}'></td><td>{html.escape(result.sources[i])}{label}{fp}"
                    f"</td>{cells}</tr>")
    return f"<table><tr><th></th><th>image</th>{head}</tr>{''.join(body)}</table>"


# -- PNG ------------------------------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed-size bitmap font
        return ImageFont.load_default()


def render_group_png(result: DebugResult, group: GroupDebug, exemplars: Sequence[Path | None] = (),
                     class_name: str = "", thumb: int = 72) -> Image.Image:
    """One picture of a group: title, exemplar patches, probability drop vs random draws, top-drop images."""
    g = group.group
    pad = 14
    tops = list(group.top_images)
    cols = max(len(exemplars), len(tops), 6)
    width = pad * 2 + cols * (thumb + 6)
    height = 54 + 22 + thumb + 40 + 110 + 22 + thumb + 36
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    title, small = _font(17), _font(12)
    name = g.label or g.group_id
    subtitle = ("" if name == g.group_id else f", {g.group_id}") + f" · class {class_name or result.class_index}"
    draw.text((pad, 10), f"{name}{subtitle}", fill="#1a202c", font=title)
    draw.text((pad, 32), f"{len(g.channels)} neurons · run {result.run_id or ''} · {result.images.shape[0]} images",
              fill="#4a5568", font=small)
    y = 54
    draw.text((pad, y), "exemplar patches", fill="#4a5568", font=small)
    y += 18
    for k, path in enumerate(exemplars):
        canvas.paste(load_thumbnail(path, thumb), (pad + k * (thumb + 6), y))
    if not exemplars:
        draw.rectangle([pad, y, pad + thumb, y + thumb], fill=PLACEHOLDER_GREY)
    y += thumb + 14
    draw.text((pad, y), f"mean drop of the class probability: group {group.mean_prob_drop:+.4f} vs random sets "
                        f"(grey) {group.random_prob_drop.mean():+.4f}", fill="#4a5568", font=small)
    y += 20
    values = [group.mean_prob_drop] + [float(v) for v in group.random_prob_drop]
    top = max([abs(v) for v in values] + [1e-9])
    zero = y + 50
    draw.line([pad, zero, width - pad, zero], fill="#718096")
    for k, value in enumerate(values):
        x = pad + k * 40
        length = value / top * 48
        box = [x, min(zero, zero - length), x + 30, max(zero, zero - length)]
        draw.rectangle(box, fill=GROUP_COLOUR if k == 0 else RANDOM_COLOUR)
    y = zero + 60
    draw.text((pad, y), "images with the largest logit drop when the group is masked (red frame: false positive)",
              fill="#4a5568", font=small)
    y += 18
    fps = set(result.false_positives.tolist())
    for k, i in enumerate(tops):
        x = pad + k * (thumb + 6)
        canvas.paste(tensor_to_pil(result.images[i], thumb), (x, y))
        if i in fps:
            draw.rectangle([x - 2, y - 2, x + thumb + 1, y + thumb + 1], outline=FP_COLOUR, width=2)
        draw.text((x, y + thumb + 3), f"{group.logit_drop[i]:+.2f}", fill="#1a202c", font=small)
    return canvas
