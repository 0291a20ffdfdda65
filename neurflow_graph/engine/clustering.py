"""Ward agglomerative clustering with the cluster count chosen by silhouette score (steps 4 and 6).

The Ward tree is built once and cut at every count; the silhouettes of all counts come from one distance matrix
(scikit-learn's, the one ``silhouette_score`` computes) turned, merge by merge up the tree, into each row's
distance sum to each cluster: the same scores, without computing any distance twice.
``ward_silhouette_per_count`` is the former way (one ``silhouette_score`` per count, each recomputing every
distance), kept as the reference the tests and benchmarks/clustering.py compare against.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import pairwise_distances, silhouette_score


def _trivial(vectors: np.ndarray, max_clusters: int, min_clusters: int) -> bool:
    n = len(vectors)
    return n < 3 or min(max_clusters, n - 1) < min_clusters or bool(np.allclose(vectors, vectors[0]))


def _renumber(best: np.ndarray | None, n: int) -> np.ndarray:
    """Labels 0..g-1 by first appearance (results do not depend on scipy's numbering); None: one group."""
    if best is None:
        return np.zeros(n, dtype=np.int64)
    _, first = np.unique(best, return_index=True)
    renumber = {best[i]: rank for rank, i in enumerate(sorted(first))}
    return np.array([renumber[v] for v in best], dtype=np.int64)


def ward_silhouette(vectors: np.ndarray, max_clusters: int, min_clusters: int = 2) -> np.ndarray:
    """Cluster rows of ``vectors`` (n×d) into 2..max_clusters groups, picking the count by silhouette.

    Returns labels 0..g-1 numbered by first appearance, so results do not depend on scipy's numbering.
    Fewer than 3 rows (silhouette needs 2 <= g <= n-1) or identical rows give one group. The cuts are
    ``fcluster``'s ``maxclust`` cuts (tied merge heights included together), the score scikit-learn's.
    """
    n = len(vectors)
    if _trivial(vectors, max_clusters, min_clusters):
        return np.zeros(n, dtype=np.int64)
    upper = min(max_clusters, n - 1)
    tree = linkage(np.asarray(vectors, dtype=np.float64), method="ward", metric="euclidean")
    heights = tree[:, 2]
    if np.any(np.diff(heights) < 0):  # Ward's heights never decrease; anything else takes the former way
        return ward_silhouette_per_count(vectors, max_clusters, min_clusters)
    # fcluster(maxclust=g) applies every merge at or below the lowest height leaving at most g clusters.
    merges_for = {g: int(np.searchsorted(heights, heights[n - g - 1], side="right"))
                  for g in range(min_clusters, upper + 1)}
    wanted = {m for m in merges_for.values() if n - m >= 2}
    # sums[c, i]: row i's summed distance to cluster c's members (one row of ``sums`` per live cluster, singletons
    # first), from the distances silhouette_score itself computes (transposed: merges add contiguous rows).
    sums = np.array(pairwise_distances(vectors, metric="euclidean").T, dtype=np.float64, order="C")
    members: dict[int, np.ndarray] = {i: np.array([i]) for i in range(n)}
    column = np.arange(2 * n - 1)  # tree cluster id -> its row in ``sums``
    scores: dict[int, float] = {}
    for m, (a, b, _h, _size) in enumerate(tree, start=1):
        a, b = int(a), int(b)
        sums[column[a]] += sums[column[b]]
        column[n + m - 1] = column[a]
        members[n + m - 1] = np.concatenate([members.pop(a), members.pop(b)])
        if m in wanted:
            scores[m] = _silhouette([members[c] for c in members], sums[[column[c] for c in members]].T, n)
    best, best_score = None, -np.inf
    for g in range(min_clusters, upper + 1):
        m = merges_for[g]
        if m in scores and scores[m] > best_score + 1e-12:
            best, best_score = m, scores[m]
    if best is None:
        return np.zeros(n, dtype=np.int64)
    return _renumber(fcluster(tree, t=n - best, criterion="maxclust"), n)


def _silhouette(members: list[np.ndarray], per_cluster: np.ndarray, n: int) -> float:
    """Mean silhouette (scikit-learn's definition: 0 for a row alone in its cluster) from each row's distance
    sums to each cluster (``per_cluster``, n×g, columns in the order of ``members``)."""
    sizes = np.array([len(rows) for rows in members], dtype=np.float64)
    labels = np.empty(n, dtype=np.int64)
    for c, rows in enumerate(members):
        labels[rows] = c
    own = per_cluster[np.arange(n), labels]
    intra = own / np.maximum(sizes[labels] - 1, 1)
    means = per_cluster / sizes
    means[np.arange(n), labels] = np.inf
    inter = means.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sil = np.nan_to_num((inter - intra) / np.maximum(intra, inter))
    sil[sizes[labels] == 1] = 0.0
    return float(sil.mean())


def ward_silhouette_per_count(vectors: np.ndarray, max_clusters: int, min_clusters: int = 2) -> np.ndarray:
    """The former ``ward_silhouette``: one ``silhouette_score`` (all distances again) per cluster count."""
    n = len(vectors)
    if _trivial(vectors, max_clusters, min_clusters):
        return np.zeros(n, dtype=np.int64)
    tree = linkage(np.asarray(vectors, dtype=np.float64), method="ward", metric="euclidean")
    best, best_score = None, -np.inf
    for g in range(min_clusters, min(max_clusters, n - 1) + 1):
        labels = fcluster(tree, t=g, criterion="maxclust")
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette_score(vectors, labels, metric="euclidean")
        if score > best_score + 1e-12:
            best, best_score = labels, score
    return _renumber(best, n)
