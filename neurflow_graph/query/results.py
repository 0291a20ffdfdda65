"""The answers of the query library that are not shared records: one frozen dataclass per answer.

Groups, edges, runs and classes are the shared records of `neurflow_graph.records`; every answer converts
for notebooks (`to_arrow()`, `to_pandas()`), and a class circuit displays itself in Jupyter (the `show` page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurflow_graph.records import Edge, Group, Tabular, html_view


@dataclass(frozen=True)
class ClassCircuit(Tabular):
    """The circuit of a class in one run: its groups (layer by layer) and weighted edges.

    `to_arrow("groups")` / `to_arrow("edges")` (the default) give one row per group or edge; in Jupyter the
    circuit draws itself with the `show` page.
    """

    class_id: str
    class_name: str
    run_id: str
    bundle_path: str | None
    groups: tuple[Group, ...]
    edges: tuple[Edge, ...]
    top_n: int | None = None

    def layers(self) -> list[tuple[str, list[Group]]]:
        """(layer, its groups by group index), from the logit layer down."""
        out: dict[int, tuple[str, list[Group]]] = {}
        for g in sorted(self.groups, key=lambda g: (g.layer_index, g.group_index)):
            out.setdefault(g.layer_index, (g.layer, []))[1].append(g)
        return [out[i] for i in sorted(out)]

    def group(self, group_id: str) -> Group:
        """The group with this id within the run (KeyError if absent)."""
        for g in self.groups:
            if g.group_id == group_id:
                return g
        raise KeyError(group_id)

    _parts = ("edges", "groups")

    def _rows(self, part: str | None) -> tuple[type, Sequence[Any]]:
        return (Edge, self.edges) if part == "edges" else (Group, self.groups)

    def _repr_html_(self) -> str | None:
        """Jupyter's inline view: the `show` page, as the render layer registers it (records.html_view)."""
        view = html_view(type(self))
        return view(self) if view is not None else None


@dataclass(frozen=True)
class BiasPath:
    """A chain of groups from `source` up to the root; strength = Π|w|, `product` keeps the sign."""

    run_id: str
    source: str
    groups: tuple[str, ...]
    weights: tuple[float, ...]
    product: float
    strength: float
    log_strength: float
    hops: int


@dataclass(frozen=True)
class SharedGroup:
    """Two groups of different classes in one layer whose neuron sets overlap (Jaccard of member neurons)."""

    layer: str
    class_a: str
    group_a: str
    class_b: str
    group_b: str
    jaccard: float
    shared: int
    n_a: int
    n_b: int
    shared_neurons: tuple[str, ...]


@dataclass(frozen=True)
class SharedNeuron:
    """A neuron of a layer and the classes whose circuits hold it (latest complete run of each class)."""

    neuron_id: str
    layer: str
    channel: int
    n_classes: int
    classes: tuple[str, ...]
    n_groups: int


@dataclass(frozen=True)
class NeuronRole:
    """One semantic group of a neuron in one class's circuit and the neuron group it fell into."""

    class_id: str
    class_name: str
    run_id: str
    layer: str
    layer_index: int
    is_root: bool
    is_leaf: bool
    activation_max: float
    semantic_group: str | None
    semantic_group_index: int | None
    n_patches: int | None
    mean_activation: float | None
    neuron_group: str | None
    group_node: str | None
    group_size: int | None
    group_label: str | None


@dataclass(frozen=True)
class GroupMatch:
    """A group of run A matched to one of run B (status same/changed), or unmatched (disappeared/appeared)."""

    layer: str
    layer_index: int
    group_a: str | None
    group_b: str | None
    jaccard: float | None
    status: str
    neurons_a: tuple[str, ...] | None
    neurons_b: tuple[str, ...] | None


@dataclass(frozen=True)
class EdgeChange:
    """An edge of run A and its counterpart in run B under the group matching, with the weight change."""

    child_layer: str
    child_layer_index: int
    child_a: str | None
    parent_a: str | None
    child_b: str | None
    parent_b: str | None
    weight_a: float | None
    weight_b: float | None
    delta: float | None
    status: str


@dataclass(frozen=True)
class RunComparison(Tabular):
    """Two runs compared: matched/unmatched groups and same/changed/appeared/disappeared edges.

    `to_arrow("groups")` (the default) or `to_arrow("edges")`.
    """

    run_a: str
    run_b: str
    min_jaccard: float
    groups: tuple[GroupMatch, ...]
    edges: tuple[EdgeChange, ...]

    def count(self, status: str, what: str = "groups") -> int:
        """How many groups (or edges) have this status."""
        return sum(1 for row in getattr(self, what) if row.status == status)

    _parts = ("groups", "edges")

    def _rows(self, part: str | None) -> tuple[type, Sequence[Any]]:
        return (GroupMatch, self.groups) if part == "groups" else (EdgeChange, self.edges)


@dataclass(frozen=True)
class Intervention:
    """A stored image-debugging result: masking one group, with its measured numbers in `properties`."""

    id: str
    run_id: str
    group_id: str
    layer: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class ClassSummary:
    """A class of the store with its latest complete run's size and dates (`class_index.cypher`)."""

    class_id: str
    model: str
    index: int
    name: str
    n_runs: int = 0
    n_complete: int = 0
    latest_run: str | None = None
    n_groups: int | None = None
    n_edges: int | None = None
    created_at: str | None = None
    completed_at: str | None = None

    @property
    def status(self) -> str:
        """`complete` (a complete run is stored), `incomplete` (runs, none complete) or `no run`."""
        return "complete" if self.n_complete else ("incomplete" if self.n_runs else "no run")


@dataclass(frozen=True)
class GroupLink:
    """A FEEDS edge seen from one group: the group at its other end, the weight, and its relation label if any."""

    id: str
    group_id: str
    layer: str
    weight: float
    n_edges: int
    label: str | None = None
    relation: str | None = None


@dataclass(frozen=True)
class GroupDetail:
    """One neuron group in its run and class, with the groups it feeds (`parents`) and is fed by (`children`)."""

    group: Group
    run_id: str
    class_id: str
    class_name: str
    latest: bool
    complete: bool
    bundle_path: str | None
    parents: tuple[GroupLink, ...]
    children: tuple[GroupLink, ...]


@dataclass(frozen=True)
class GroupShare:
    """A group of another run sharing member neurons with a given group (a SHARES pair), with its class."""

    id: str
    group_id: str
    layer: str
    label: str | None
    n_neurons: int
    run_id: str
    latest: bool
    class_id: str
    class_name: str
    jaccard: float
    shared: int
    shared_neurons: tuple[str, ...]


@dataclass(frozen=True)
class ConceptPatch:
    """One patch of a neuron's semantic group (a concept) in one run; `path` is its thumbnail file when found."""

    class_id: str
    class_name: str
    run_id: str
    latest: bool
    semantic_group: str
    group_index: int
    n_patches: int
    rank: int
    patch_id: int
    thumbnail: str | None
    bundle_path: str | None = None
    path: Path | None = None
    image_index: int | None = None
    box: tuple[int, int, int, int] | None = None
    """The patch's pixel box (x0, y0, x1, y1) in image `image_index` of the run (the bundle's images/)."""


@dataclass(frozen=True)
class Evaluation:
    """An evaluation result stored on a run (an Evaluation node), with its figures in `properties`."""

    id: str
    run_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class LayerFaithfulness:
    """One layer of a stored circuit's faithfulness (`faithfulness.cypher`): its core neurons masked and retained on
    the run's images against random sets of the same size (mean, standard deviation, z)."""

    run_id: str
    class_id: str
    verdict: str
    layer: str
    layer_index: int
    n_core: int
    width: int
    n_images: int
    logit_drop: float
    random_logit_drop_mean: float
    random_logit_drop_std: float
    logit_z: float
    prob_drop: float
    random_prob_drop_mean: float
    random_prob_drop_std: float
    prob_z: float
    kept_share: float
    random_kept_share_mean: float
    random_kept_share_std: float
    kept_z: float
    mask_accuracy: float
    retain_accuracy: float
    beats_random: bool
    sets: int
    seed: int


@dataclass(frozen=True)
class ClassFaithfulness:
    """A class ranked by its latest run's faithfulness (`faithfulness_classes.cypher`): the weakest layer and its z."""

    class_id: str
    class_name: str
    run_id: str
    verdict: str
    weakest_layer: str
    weakest_z: float
    n_layers: int
    n_beating: int
    beats_random_everywhere: bool
    level: str
    sets: int
    seed: int
