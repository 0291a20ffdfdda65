"""The prompts (after the paper's appendix G: a captioning role, step by step) and the parsing of their answers.

Each prompt asks for one JSON object; the parser accepts it bare, in a ```json fence, or inside prose, and
anything else is an AnswerError. Bump a prompt's version whenever its text changes: stored labels carry the
version, and a new version makes `label` ask again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from neurflow_graph.labels.client import AnswerError
from neurflow_graph.labels.grid import data_uri

LABEL_PROMPT_VERSION = "label-v1"
RELATION_PROMPT_VERSION = "relation-v1"
MAX_LABEL_CHARS = 80
MAX_TEXT_CHARS = 2000

SYSTEM_PROMPT = (
    "You are an image-captioning model. You describe, in objective visual terms, what a set of image "
    "patches has in common."
)

LABEL_PROMPT = """\
# What you see
The image is a grid of {n} image patches, separated by grey lines. They are the patches that most strongly \
activate one group of neurons inside an image classifier, best first.

# Your task
Find the visual features these patches share, and name them.

# Keep in mind
- Describe what most patches have in common; do not caption each patch.
- A patch or two may be outliers: ignore them when they do not fit the common theme.
- Use objective visual terms (colours, edges, curves, textures, shapes, object parts), not opinions such as \
beautiful or scary, and not the story or context behind the pictures.
- Features may be simple (an edge orientation, a colour) or complex (an object part in a setting).

# Step by step
1. List the visual features that most patches share.
2. Keep the few features shared most widely.
3. Name them with a short label of 2 to 5 words.
4. Describe them in one or two sentences.

# Answer
Answer with one JSON object and nothing else:
{{"common_features": ["feature", "..."], "label": "short label", "description": "one or two sentences"}}
"""

RELATION_PROMPT = """\
# What you see
Two images follow, each a grid of image patches that most strongly activate one group of neurons inside an \
image classifier.
- Group 1 sits in a higher layer.
- Group 2 sits in the layer below it; the network builds Group 1's feature partly from Group 2's feature.

# Your task
Describe the features of each group, then explain how Group 2's feature contributes to Group 1's.

# Step by step
1. List the visual features common to the patches of Group 1, then those common to the patches of Group 2.
2. Match each feature of Group 2 with a feature of Group 1.
3. A feature of Group 2 may have no direct match but combine with others into a feature of Group 1 (for \
example red and yellow strokes into an orange patch, curves of several orientations into a ring, two straight \
edges into a corner): say so when that is what you see.
4. If no feature matches, say that there is no match; never describe features that are not visible.
5. Explain, in one or two sentences, how Group 2's feature builds Group 1's.

# Answer
Answer with one JSON object and nothing else:
{"group1_features": ["..."], "group2_features": ["..."], "matches": ["group 2 feature -> group 1 feature"], \
"relation": "one or two sentences"}
"""


@dataclass(frozen=True)
class LabelAnswer:
    """A neuron group's short label, its one-paragraph description, and the features the model listed."""

    label: str
    description: str
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelationAnswer:
    """How a child group's feature builds its parent's, in one or two sentences, and the matches listed."""

    relation: str
    matches: tuple[str, ...] = ()


def label_messages(grid_png: bytes, n_exemplars: int) -> list[dict[str, Any]]:
    """Chat messages asking for the label of one group shown as `grid_png` (a grid of `n_exemplars` patches)."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": LABEL_PROMPT.format(n=n_exemplars)},
                {"type": "image_url", "image_url": {"url": data_uri(grid_png)}},
            ],
        },
    ]


def relation_messages(parent_png: bytes, child_png: bytes) -> list[dict[str, Any]]:
    """Chat messages asking how the child group (`child_png`, Group 2) builds the parent's (`parent_png`, Group 1)."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": RELATION_PROMPT},
                {"type": "text", "text": "Group 1 (higher layer):"},
                {"type": "image_url", "image_url": {"url": data_uri(parent_png)}},
                {"type": "text", "text": "Group 2 (the layer below):"},
                {"type": "image_url", "image_url": {"url": data_uri(child_png)}},
            ],
        },
    ]


def parse_label(text: str) -> LabelAnswer:
    """The label and description in a model's answer; AnswerError when they are missing or malformed."""
    obj = _json_object(text, "label")
    label = _clean(obj.get("label"))
    description = _clean(obj.get("description"))
    if not label:
        raise AnswerError(f"the answer's JSON has no non-empty \"label\": {_quote(text)}")
    if len(label) > MAX_LABEL_CHARS:
        raise AnswerError(f"the answer's label is {len(label)} characters long (at most {MAX_LABEL_CHARS}): "
                          f"{_quote(label)}")
    if not description:
        raise AnswerError(f"the answer's JSON has no non-empty \"description\": {_quote(text)}")
    return LabelAnswer(label.rstrip("."), description[:MAX_TEXT_CHARS], _strings(obj.get("common_features")))


def parse_relation(text: str) -> RelationAnswer:
    """The relation sentence(s) in a model's answer; AnswerError when missing or malformed."""
    obj = _json_object(text, "relation")
    relation = _clean(obj.get("relation"))
    if not relation:
        raise AnswerError(f"the answer's JSON has no non-empty \"relation\": {_quote(text)}")
    return RelationAnswer(relation[:MAX_TEXT_CHARS], _strings(obj.get("matches")))


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def _json_object(text: str, key: str) -> dict[str, Any]:
    """The first JSON object in `text` holding `key` (else the first object at all): bare, fenced, or in prose."""
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer is empty")
    candidates: list[dict[str, Any]] = []
    for chunk in [text, *_FENCE.findall(text)]:
        candidates.extend(_objects_in(chunk))
    for obj in candidates:
        if key in obj:
            return obj
    if candidates:
        return candidates[0]
    raise AnswerError(f"the answer is not the JSON object the prompt asks for: {_quote(text)}")


def _objects_in(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found = []
    start = text.find("{")
    while start >= 0:
        try:
            obj, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        start = text.find("{", end)
    return found


def _clean(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return " ".join(value.split()).strip().strip("\"'").strip()


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(s for s in (_clean(v) for v in value) if s)


def _quote(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return repr(line if len(line) <= limit else line[: limit - 1] + "…")
