"""Train the metrics' sound-class classifier on the SFX corpus (``v2a eval train-classifier``).

Recipe: take the corpus train split, at most ``max_per_label`` clips per label (speech alone has thousands)
and only labels with at least ``min_per_label`` clips; add ``procedural_per_label`` renders of each sound
that Foley world synthesises rather than records (modal impacts per material, footsteps per surface,
doors, breaking glass, rain, wind, fire, water, engines: ``v2a.data.procedural_audio``), because the corpus
holds few or none of them and Foley-world clips are full of them; embed the first ``max_blocks`` blocks of
each clip with aisfx; fit the MLP with class-balanced loss weights; score the corpus test split (top-1
label and top-1 category accuracy, overall and averaged over labels). Embeddings can be cached in an
``.npz`` file so a retrain with other settings skips the slow part.

Every training clip is also embedded after a round trip through the bundled codec and vocoder (mel -> codec
latent -> mel -> vocoder, the path every generated track takes), and both copies train the MLP with equal
weight. Without them the classifier hears the representation's artifacts rather than the sound: on the corpus
test split its category accuracy fell from 0.84 on the recordings to 0.64 on their round trips, and ground
truth's class on the Foley-world test set from 0.645 to 0.36, which made a codec look like it lost half
the class it keeps. Trained with them it scores 0.84 on both and 0.66 / 0.65. The report gives the test
accuracy on the round trips beside the recordings'.

Rebuild the bundled checkpoint::

    v2a eval train-classifier --corpus data/sfx --out checkpoints/eval/sound_classifier \
        --cache /tmp/sfx_embeddings.npz
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from v2a.audio.bundled import bundle_path, default_codec, default_vocoder
from v2a.audio.reconstruct import reconstruct_waveform
from v2a.data import procedural_audio as pa
from v2a.data.sfx_corpus import read_manifest
from v2a.errors import InputError
from v2a.eval.classifier import FitConfig, SoundClassifier, category, fit_classifier, save_classifier
from v2a.eval.embeddings import BLOCK_FRAMES, BLOCK_HOP, HOP, SAMPLE_RATE, Embedding, SfxEmbedder
from v2a.eval.inputs import fit_length
from v2a.io.audio import load_audio, resample
from v2a.model.checkpoint import WEIGHTS_FILE

Embed = Callable[[np.ndarray, int], Embedding]
# a degradation of a waveform (wav, sample rate) -> (wav, sample rate), e.g. the codec -> vocoder round trip
Transform = Callable[[np.ndarray, int], tuple[np.ndarray, int]]
ROUND_TRIPS = ("codec", "none")
CODEC_TAG = "codec-trip"  # cache-key prefix of the codec round trips' embeddings (with the bundle's hashes)
PROCEDURAL_S = 2.3  # one embedding block
# label -> how Foley world's procedural generator makes one event (rng, sample rate) -> waveform
_STEP_SURFACES = ("wood", "stone", "metal", "gravel", "grass", "dirt", "sand", "snow", "water")
PROCEDURAL: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    **{
        ("glass/clink" if m == "glass" else f"impact/{m}"): (
            lambda rng, sr, m=m: pa.impact(
                m, size_m=rng.uniform(0.03, 0.4), velocity=rng.uniform(0.5, 4), sample_rate=sr, rng=rng
            )
        )
        for m in pa.MATERIALS
    },
    **{
        f"footstep/{s}": (lambda rng, sr, s=s: pa.footstep(s, weight=rng.uniform(0.4, 1.8), sample_rate=sr, rng=rng))
        for s in _STEP_SURFACES
    },
    "door/open": lambda rng, sr: pa.door("open", size=rng.uniform(0.7, 1.4), sample_rate=sr, rng=rng),
    "door/close": lambda rng, sr: pa.door("close", size=rng.uniform(0.7, 1.4), sample_rate=sr, rng=rng),
    "glass/break": lambda rng, sr: pa.glass_break(size=rng.uniform(0.5, 1.5), sample_rate=sr, rng=rng),
}  # fmt: skip
_TEXTURE_LABELS = {
    "rain": "weather/rain",
    "wind": "weather/wind",
    "fire": "fire/burning",
    "water": "water/flow",
}


@dataclass(frozen=True)
class ClassifierReport:
    """What a training run produced.

    Attributes:
        path: the written checkpoint directory.
        labels: number of classes.
        categories: number of coarse categories.
        train_clips: training clips used.
        train_blocks: training embedding blocks.
        test_clips: corpus test clips scored.
        test_acc: top-1 label accuracy on the test split.
        test_acc_coarse: top-1 category accuracy on the test split.
        test_acc_macro: label accuracy averaged over the test split's labels.
        test_acc_coarse_macro: category accuracy averaged over the test split's categories.
        seconds: wall-clock time of the run.
        test_acc_round_trip: top-1 label accuracy on the test clips' round trips (None: no round trip).
        test_acc_coarse_round_trip: top-1 category accuracy on them (None: no round trip).
    """

    path: str
    labels: int
    categories: int
    train_clips: int
    train_blocks: int
    test_clips: int
    test_acc: float
    test_acc_coarse: float
    test_acc_macro: float
    test_acc_coarse_macro: float
    seconds: float
    test_acc_round_trip: float | None = None
    test_acc_coarse_round_trip: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def select_training_rows(
    rows: list[dict], *, max_per_label: int, min_per_label: int, seed: int = 0
) -> list[dict]:
    """Train-split rows, at most ``max_per_label`` per label (a seeded random choice), labels with fewer
    than ``min_per_label`` clips dropped."""
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("split") == "train":
            by_label.setdefault(row["label"], []).append(row)
    rng = np.random.default_rng(seed)
    chosen: list[dict] = []
    for label in sorted(by_label):
        group = by_label[label]
        if len(group) < min_per_label:
            continue
        picks = rng.choice(len(group), size=min(max_per_label, len(group)), replace=False)
        chosen.extend(group[i] for i in sorted(picks))
    return chosen


def procedural_clip(label: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    """One 2.3 s training clip of a procedural label: 1-4 events (or a texture / engine) with a random
    level and, half the time, a faint noise floor like Foley world's."""
    n = round(PROCEDURAL_S * sr)
    if label in PROCEDURAL:
        wav = np.zeros(n, np.float32)
        for start in np.sort(rng.uniform(0.0, PROCEDURAL_S - 0.3, size=int(rng.integers(1, 5)))):
            event = PROCEDURAL[label](rng, sr)
            at = round(start * sr)
            wav[at : at + event.size] += event[: n - at]
    elif label == "engine/car":
        wav = pa.engine(PROCEDURAL_S, rpm=rng.uniform(800, 4500), cylinders=int(rng.choice([4, 6, 8])),
                        load=rng.uniform(0.2, 0.9), sample_rate=sr, rng=rng)  # fmt: skip
    else:
        kind = {v: k for k, v in _TEXTURE_LABELS.items()}[label]
        wav = pa.noise_texture(kind, PROCEDURAL_S, intensity=rng.uniform(0.2, 0.9), sample_rate=sr, rng=rng)
    wav = fit_length(wav, n) * rng.uniform(0.2, 1.0)
    if rng.random() < 0.5:
        wav += (10 ** (rng.uniform(-60, -35) / 20) * rng.standard_normal(n)).astype(np.float32)
    return np.clip(wav, -1.0, 1.0)


def procedural_labels() -> list[str]:
    """The labels ``procedural_clip`` can render."""
    return sorted([*PROCEDURAL, "engine/car", *_TEXTURE_LABELS.values()])


def embed_procedural(
    per_label: int,
    embed: Embed,
    *,
    seed: int = 0,
    cache: Path | None = None,
    progress: bool = True,
    transform: Transform | None = None,
    tag: str = "",
) -> tuple[list[str], list[Embedding]]:
    """Render and embed ``per_label`` procedural clips of every procedural label (seeded, cached).

    ``transform`` degrades each clip before it is embedded; ``tag`` prefixes its cache keys.
    """
    stored = _read_cache(cache)
    labels, out, fresh = [], [], 0
    sr = 24_000
    jobs = [(label, i) for label in procedural_labels() for i in range(per_label)]
    desc = f"embedding procedural clips{f' ({tag})' if tag else ''}"
    for label, i in tqdm(jobs, desc=desc, disable=not progress, unit="clip"):
        key = f"{_prefix(tag)}procedural:{label}:{seed}:{i}"
        if key not in stored:
            rng = np.random.default_rng([seed, i, *label.encode()])
            stored[key] = embed(*_apply(transform, procedural_clip(label, rng, sr), sr))
            fresh += 1
        labels.append(label)
        out.append(stored[key])
    if cache is not None and fresh:
        _write_cache(cache, stored)
    return labels, out


def embed_rows(
    rows: list[dict],
    corpus_dir: Path,
    embed: Embed,
    *,
    max_blocks: int,
    cache: Path | None = None,
    progress: bool = True,
    transform: Transform | None = None,
    tag: str = "",
) -> list[Embedding]:
    """Embed the first ``max_blocks`` blocks of each row's audio (cached by path when ``cache`` is given).

    ``transform`` degrades each clip before it is embedded; ``tag`` prefixes its cache keys.
    """
    stored = _read_cache(cache)
    seconds = ((max_blocks - 1) * BLOCK_HOP + BLOCK_FRAMES) * HOP / SAMPLE_RATE
    out: list[Embedding] = []
    fresh = 0
    desc = f"embedding corpus clips{f' ({tag})' if tag else ''}"
    for row in tqdm(rows, desc=desc, disable=not progress, unit="clip"):
        key = f"{_prefix(tag)}{row['path']}@{max_blocks}"
        if key not in stored:
            wav, sr = load_audio(corpus_dir / row["path"], duration_s=seconds)
            stored[key] = embed(*_apply(transform, wav, sr))
            fresh += 1
        out.append(stored[key])
    if cache is not None and fresh:
        _write_cache(cache, stored)
    return out


def train_classifier(
    corpus_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    max_per_label: int = 150,
    min_per_label: int = 3,
    max_blocks: int = 4,
    procedural_per_label: int = 40,
    fit: FitConfig | None = None,
    cache: str | os.PathLike | None = None,
    embedder: SfxEmbedder | None = None,
    round_trip: str = "codec",
    progress: bool = True,
) -> ClassifierReport:
    """Train, test and save the sound-class classifier.

    Args:
        corpus_dir: the SFX corpus folder (with ``manifest.jsonl``).
        out: checkpoint directory to write (replaced if present).
        max_per_label: cap on training clips per label.
        min_per_label: labels with fewer training clips are left out.
        max_blocks: embedding blocks (2.32 s each, hop 1.16 s) taken from the start of each clip.
        procedural_per_label: procedural clips added per procedural label (0: corpus only).
        fit: MLP training settings (None: ``FitConfig()``).
        cache: ``.npz`` file of embeddings to reuse and extend (None: no cache).
        embedder: the aisfx embedder (None: a new one).
        round_trip: ``codec`` also trains (and tests) on every clip's round trip through the bundled codec
            and vocoder; ``none`` trains on the recordings alone.
        progress: show progress bars.

    Returns:
        The report, also stored in the checkpoint's ``meta``.

    Raises:
        InputError: the corpus has no manifest or no label with enough clips, or an unknown ``round_trip``.
        ModelUnavailableError: ``round_trip="codec"`` without the bundled codec and vocoder.
    """
    start = time.perf_counter()
    if round_trip not in ROUND_TRIPS:
        raise InputError(f"round_trip must be one of {', '.join(ROUND_TRIPS)}, got {round_trip!r}")
    fit = fit or FitConfig()
    corpus = Path(corpus_dir)
    rows = read_manifest(corpus / "manifest.jsonl")
    train_rows = select_training_rows(rows, max_per_label=max_per_label, min_per_label=min_per_label)
    proc_labels = procedural_labels() if procedural_per_label > 0 else []
    labels = sorted({r["label"] for r in train_rows} | set(proc_labels))
    if len(labels) < 2:
        raise InputError(f"corpus {corpus} has fewer than 2 labels with {min_per_label}+ training clips")
    embedder = embedder or SfxEmbedder()
    cache_path = Path(cache) if cache is not None else None
    domains: list[tuple[str, Transform | None]] = [("", None)]
    models: dict[str, str] = {}
    if round_trip == "codec":
        trip = codec_round_trip()  # first, so a missing bundle is a ModelUnavailableError
        models = _bundle_hashes()
        # keys name the bundle, so a cache never serves another vocoder's round trips
        domains.append((f"{CODEC_TAG}-{models['codec']}-{models['vocoder']}", trip))
    examples: list[str] = []
    parts = []
    for tag, transform in domains:
        train_emb = embed_rows(train_rows, corpus, embedder.embed, max_blocks=max_blocks, cache=cache_path,
                               progress=progress, transform=transform, tag=tag)  # fmt: skip
        proc_names, proc_emb = embed_procedural(procedural_per_label, embedder.embed, cache=cache_path,
                                                progress=progress, transform=transform, tag=tag)  # fmt: skip
        examples = [r["label"] for r in train_rows] + proc_names
        parts.append(_training_blocks(examples, train_emb + proc_emb, labels))
    # each domain's weights have mean 1, so recordings and round trips count alike
    features, targets, weights = (np.concatenate(column) for column in zip(*parts, strict=True))
    model = fit_classifier(features, targets, labels, sample_weight=weights, config=fit)

    test_rows = [r for r in rows if r.get("split") == "test"]
    scores: dict[str, float] = {}
    for tag, transform in domains:
        test_emb = embed_rows(test_rows, corpus, embedder.embed, max_blocks=max_blocks, cache=cache_path,
                              progress=progress, transform=transform, tag=tag)  # fmt: skip
        domain = score_rows(model, test_rows, test_emb)
        if tag:
            scores |= {"test_acc_round_trip": domain["test_acc"],
                       "test_acc_coarse_round_trip": domain["test_acc_coarse"]}  # fmt: skip
        else:
            scores |= domain
    report = ClassifierReport(
        path=str(out),
        labels=len(labels),
        categories=len(model.categories),
        train_clips=len(examples),
        train_blocks=int(features.shape[0]),
        test_clips=len(test_rows),
        seconds=round(time.perf_counter() - start, 1),
        **scores,
    )
    meta = {
        "report": {k: v for k, v in report.to_dict().items() if k != "path"},
        "fit": asdict(fit),
        "data": {"corpus": str(corpus), "max_per_label": max_per_label, "min_per_label": min_per_label,
                 "max_blocks": max_blocks, "procedural_per_label": procedural_per_label,
                 "round_trip": round_trip, "round_trip_models": models,
                 "train_per_label": dict(sorted(Counter(examples).items()))},
    }  # fmt: skip
    save_classifier(model, out, meta=meta)
    return report


def codec_round_trip() -> Transform:
    """The round trip every generated track takes: waveform -> log-mel -> bundled codec -> bundled vocoder.

    Raises:
        ModelUnavailableError: the bundled codec or vocoder is missing.
    """
    codec, vocoder = default_codec(), default_vocoder()
    rate = codec.spec.sample_rate

    def trip(wav: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        at_rate = resample(wav, sr, rate) if sr != rate else wav
        return reconstruct_waveform(at_rate, via="codec", vocoder=vocoder, codec=codec), rate

    return trip


def _bundle_hashes() -> dict[str, str]:
    """SHA-256 (first 16 hex digits) of the bundled codec's and vocoder's weights: which bundle the round trips
    went through, so a rebuild after the bundle changes is told apart."""
    return {
        kind: hashlib.sha256((bundle_path(kind) / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]
        for kind in ("codec", "vocoder")
    }


def _prefix(tag: str) -> str:
    return f"{tag}:" if tag else ""


def _apply(transform: Transform | None, wav: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    return (wav, sr) if transform is None else transform(wav, sr)


def _training_blocks(
    examples: list[str], embeddings: list[Embedding], labels: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack every block; weight each so that every label has the same total weight, and a clip's blocks
    share one clip's weight (long clips do not count more than short ones)."""
    index = {label: i for i, label in enumerate(labels)}
    per_label = Counter(examples)
    feats, targets, weights = [], [], []
    for label, emb in zip(examples, embeddings, strict=True):
        n = emb.blocks.shape[0]
        feats.append(emb.blocks)
        targets.extend([index[label]] * n)
        weights.extend([1.0 / (per_label[label] * n)] * n)
    w = np.asarray(weights, dtype=np.float32)
    return np.concatenate(feats), np.asarray(targets, dtype=np.int64), w / w.mean()


def score_rows(model: SoundClassifier, rows: list[dict], embeddings: list[Embedding]) -> dict[str, float]:
    """Top-1 label and category accuracy (overall and macro) of clips with known labels."""
    fine: dict[str, list[float]] = {}
    coarse: dict[str, list[float]] = {}
    for row, emb in zip(rows, embeddings, strict=True):
        probs = model.clip_proba(emb)
        top = model.labels[int(np.argmax(probs))]
        top_cat = model.categories[int(np.argmax(model.category_proba(probs)))]
        fine.setdefault(row["label"], []).append(float(top == row["label"]))
        coarse.setdefault(category(row["label"]), []).append(float(top_cat == category(row["label"])))
    flat = [v for vs in fine.values() for v in vs]
    flat_coarse = [v for vs in coarse.values() for v in vs]
    if not flat:
        return {"test_acc": float("nan"), "test_acc_coarse": float("nan"), "test_acc_macro": float("nan"),
                "test_acc_coarse_macro": float("nan")}  # fmt: skip
    return {
        "test_acc": round(float(np.mean(flat)), 4),
        "test_acc_coarse": round(float(np.mean(flat_coarse)), 4),
        "test_acc_macro": round(float(np.mean([np.mean(v) for v in fine.values()])), 4),
        "test_acc_coarse_macro": round(float(np.mean([np.mean(v) for v in coarse.values()])), 4),
    }


def _read_cache(path: Path | None) -> dict[str, Embedding]:
    if path is None or not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        keys = json.loads(str(data["keys"]))
        counts = data["counts"]
        blocks, energy = data["blocks"], data["energy"]
    out, at = {}, 0
    for key, n in zip(keys, counts, strict=True):
        b = blocks[at : at + n]
        out[key] = Embedding(blocks=b, clip=b.mean(axis=0), energy=energy[at : at + n])
        at += n
    return out


def _write_cache(path: Path, stored: dict[str, Embedding]) -> None:
    from v2a.io.atomic import atomic_output

    keys = list(stored)
    with atomic_output(path) as tmp, tmp.open("wb") as f:
        np.savez(
            f,
            keys=np.asarray(json.dumps(keys)),
            counts=np.asarray([stored[k].blocks.shape[0] for k in keys], dtype=np.int64),
            blocks=np.concatenate([stored[k].blocks for k in keys]),
            energy=np.concatenate([stored[k].energy for k in keys]),
        )
