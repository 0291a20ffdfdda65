"""Ward agglomerative clustering with the cluster count chosen by silhouette score (steps 4 and 6)."""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import silhouette_score


def ward_silhouette(vectors: np.ndarray, max_clusters: int, min_clusters: int = 2) -> np.ndarray:
    """Cluster rows of ``vectors`` (n×d) into 2..max_clusters groups, picking the count by silhouette.

    Returns labels 0..g-1 numbered by first appearance, so results do not depend on scipy's numbering.
    Fewer than 3 rows (silhouette needs 2 <= g <= n-1) or identical rows give one group.
    """
    n = len(vectors)
    upper = min(max_clusters, n - 1)
    if n < 3 or upper < min_clusters or np.allclose(vectors, vectors[0]):
        return np.zeros(n, dtype=np.int64)
    tree = linkage(np.asarray(vectors, dtype=np.float64), method="ward", metric="euclidean")
    best, best_score = None, -np.inf
    for g in range(min_clusters, upper + 1):
        labels = fcluster(tree, t=g, criterion="maxclust")
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette_score(vectors, labels, metric="euclidean")
        if score > best_score + 1e-12:
            best, best_score = labels, score
    if best is None:
        return np.zeros(n, dtype=np.int64)
    _, first = np.unique(best, return_index=True)
    renumber = {best[i]: rank for rank, i in enumerate(sorted(first))}
    return np.array([renumber[v] for v in best], dtype=np.int64)
