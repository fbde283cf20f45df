"""Fréchet distance, similarity and diversity on embeddings with known structure."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.eval.diversity import pairwise_diversity
from v2a.eval.fad import cosine_similarity, frechet_distance


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 4))
    b = rng.standard_normal((4000, 4)) + np.array([1.0, 0.0, 2.0, 0.0])
    # N(0, I) vs N(mu, I): |mu|^2 = 5; N(0, I) vs N(0, 4I): tr(I + 4I - 2 * 2I) = 4 * 1 = 4
    assert frechet_distance(a, b) == pytest.approx(5.0, rel=0.05)
    assert frechet_distance(a, 2 * rng.standard_normal((4000, 4))) == pytest.approx(4.0, rel=0.08)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_grows_with_corruption_and_handles_few_samples():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((30, 64))  # fewer samples than dimensions: singular covariances
    same = rng.standard_normal((30, 64))
    shifted = rng.standard_normal((30, 64)) + 0.5
    assert 0 <= frechet_distance(ref, same) < frechet_distance(ref, shifted)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(ref[:1], same)
    with pytest.raises(ValueError, match="embeddings"):
        frechet_distance(ref, same[:, :3])


def test_cosine_similarity_and_diversity():
    assert cosine_similarity(np.array([1.0, 0]), np.array([2.0, 0])) == pytest.approx(1.0)
    assert cosine_similarity(np.array([1.0, 0]), np.array([0.0, 3])) == pytest.approx(0.0)
    assert cosine_similarity(np.zeros(2), np.ones(2)) == 0.0
    v = np.array([1.0, 2.0, 3.0])
    assert pairwise_diversity([v, v, v]) == pytest.approx(0.0)
    assert pairwise_diversity([v, -v]) == pytest.approx(2.0)
    assert pairwise_diversity([v]) is None
