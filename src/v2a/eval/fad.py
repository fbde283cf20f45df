"""Distribution distance and per-clip similarity in an embedding space (aisfx here).

The Fréchet distance between two sets of embeddings models each set as a Gaussian and compares them
(Heusel et al. 2017 for images; Kilgour et al. 2019, "Fréchet Audio Distance", for audio):
``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. As in FAD it is computed over per-block
embeddings (one per 2.32 s block), so an 8 s clip contributes several samples. With fewer samples than
dimensions the covariances are singular; a tiny ridge keeps the matrix square root finite. The value is
biased upwards for small sets, so compare models only on the same set.
"""

from __future__ import annotations

import numpy as np


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two embedding sets.

    Args:
        a: (N, D) embeddings, N >= 2.
        b: (M, D) embeddings, M >= 2.

    Returns:
        The distance (>= 0).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D) embeddings, got {a.shape=} {b.shape=}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 embeddings per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    value = float(
        np.sum((mu_a - mu_b) ** 2)
        + np.trace(cov_a)
        + np.trace(cov_b)
        - 2.0 * _trace_sqrt_product(cov_a, cov_b)
    )
    return max(value, 0.0)


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """tr((A B)^(1/2)) for symmetric positive semi-definite A, B (A B is similar to A^(1/2) B A^(1/2))."""
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # (D, D)
    inner = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sum(np.sqrt(np.clip(inner, 0.0, None))))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two vectors (0 when either is zero)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else 0.0
