"""Diversity across seeds: how different the variants generated for one video are.

Mean pairwise cosine distance (1 - cosine similarity) of the variants' clip embeddings: 0 when every seed
gives the same sound, larger when they differ. Only defined for two or more variants.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from v2a.eval.fad import cosine_similarity


def pairwise_diversity(embeddings: Sequence[np.ndarray]) -> float | None:
    """Mean pairwise cosine distance of (D,) clip embeddings; None for fewer than two."""
    n = len(embeddings)
    if n < 2:
        return None
    distances = [
        1.0 - cosine_similarity(embeddings[i], embeddings[j]) for i in range(n) for j in range(i + 1, n)
    ]
    return float(np.mean(distances))
