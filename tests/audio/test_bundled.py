from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from v2a.audio import bundled
from v2a.audio.codec import Codec, codec_config
from v2a.audio.spec import DEFAULT_SPEC
from v2a.audio.vocoder import Vocoder, vocoder_config
from v2a.errors import InputError, ModelUnavailableError
from v2a.model.checkpoint import save_checkpoint


def _release(run_dir: Path) -> Codec:
    torch.manual_seed(0)
    config = dataclasses.replace(
        codec_config("tiny"), dim=32, intermediate_dim=64, mel_layers=1, latent_layers=1
    )
    model = Codec(config).eval()
    model.set_latent_stats(torch.linspace(-1, 1, 24), torch.linspace(0.5, 1.5, 24))
    (run_dir / "release").mkdir(parents=True)
    save_checkpoint(run_dir / "release", model, kind="codec", config=config.to_dict(), meta={"step": 12})
    return model


def test_export_writes_float16_weights_that_load_as_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    model = _release(tmp_path / "run")
    monkeypatch.setenv("V2A_CHECKPOINTS", str(tmp_path / "bundle"))
    out = bundled.export_bundle(tmp_path / "run", "codec", meta={"command": "v2a train codec ..."})
    assert out == tmp_path / "bundle" / "codec" == bundled.bundle_path("codec")
    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.float16}
    meta = json.loads((out / "config.json").read_text())["meta"]
    assert meta["step"] == 12 and meta["dtype"] == "float16" and meta["command"] == "v2a train codec ..."
    full = sum(f.stat().st_size for f in (tmp_path / "run" / "release").iterdir())
    assert bundled.bundle_size_bytes(out) < 0.6 * full

    codec = bundled.default_codec()
    assert next(codec.parameters()).dtype == torch.float32 and not codec.training
    mel = torch.randn(1, DEFAULT_SPEC.n_mels, 30) * 2 - 5
    torch.testing.assert_close(
        codec.decode(codec.encode(mel)), model.decode(model.encode(mel)), atol=0.05, rtol=0
    )


def test_missing_and_wrong_bundles_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("V2A_CHECKPOINTS", str(tmp_path / "empty"))
    with pytest.raises(
        ModelUnavailableError, match=r"bundled vocoder checkpoint is missing: expected .*empty/vocoder"
    ):
        bundled.default_vocoder()
    with pytest.raises(ModelUnavailableError, match="v2a train codec"):
        bundled.default_codec()
    with pytest.raises(InputError, match="unknown bundled checkpoint kind 'encoder'"):
        bundled.export_bundle(tmp_path, "encoder")
    with pytest.raises(InputError, match=r"needs validate=v2a\.model\.dit\.load_generator"):
        bundled.export_bundle(tmp_path, "generator")
    _release(tmp_path / "run")
    with pytest.raises(InputError, match="holds a 'codec' checkpoint, not a 'vocoder'"):
        bundled.export_bundle(tmp_path / "run", "vocoder", dest=tmp_path / "v")
    vocoder = Vocoder(dataclasses.replace(vocoder_config("tiny"), dim=16, intermediate_dim=32, num_layers=1))
    (tmp_path / "empty").mkdir()
    save_checkpoint(tmp_path / "empty" / "codec", vocoder, kind="vocoder", config=vocoder.config.to_dict())
    with pytest.raises(InputError, match="holds a 'vocoder' checkpoint, not a 'codec'"):
        bundled.default_codec()


def test_the_default_folder_is_the_repository_checkpoints(repo_root: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("V2A_CHECKPOINTS", raising=False)
    assert bundled.checkpoints_dir() == repo_root / "checkpoints"
    assert bundled.bundle_path("vocoder") == repo_root / "checkpoints" / "vocoder"


def test_a_generator_bundle_keeps_its_semantic_head(tmp_path: Path):
    from v2a.encoders.semantic_head import SemanticHead, generator_head
    from v2a.model.config import model_config
    from v2a.model.dit import AudioDiT, load_generator, save_generator

    torch.manual_seed(0)
    head = SemanticHead(["door/open", "impact/wood"], hidden=8)
    head.label_embeddings.normal_()
    net = AudioDiT(model_config("tiny", width=32, heads=2, joint_depth=1, audio_depth=1, semantic_dim=768))
    save_generator(net, tmp_path / "release", semantic_head=head.part({"source": "test"}))
    out = bundled.export_bundle(
        tmp_path / "release", "generator", dest=tmp_path / "bundle", validate=load_generator
    )
    assert {t.dtype for t in load_file(out / "semantic_head" / "model.safetensors").values()} == {
        torch.float16
    }
    bundled_head = generator_head(out)
    assert bundled_head is not None and bundled_head.labels == head.labels
    features = torch.randn(5, 1280).numpy() * 3
    torch.testing.assert_close(
        torch.from_numpy(bundled_head.text_space(features)), torch.from_numpy(head.eval().text_space(features)),
        atol=2e-3, rtol=0,
    )  # fmt: skip
    assert generator_head(tmp_path) is None  # a folder without a head has none
