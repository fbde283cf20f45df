"""The models and caches behind ``v2a eval``'s metrics, and the options that select the metric groups.

A ``Scorer`` loads each model on first use (aisfx embedder, sound classifier, learned sync estimator,
Whisper) and caches per-file work (a reference's features, a video's motion), so a benchmark that scores
several systems on one set pays for the references once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from v2a.audio.spec import DEFAULT_SPEC
from v2a.data.manifest import ClipRow
from v2a.errors import InputError, ModelUnavailableError
from v2a.eval.classifier import SoundClassifier, load_classifier
from v2a.eval.embeddings import Embedding, SfxEmbedder, default_embedder
from v2a.eval.inputs import load_reference
from v2a.eval.speech import Transcriber, default_transcriber
from v2a.eval.sync import MAX_LAG_S, MotionTrack, OffsetEstimator, learned_offset_estimator, video_motion

METRIC_GROUPS = ("onset", "sync", "lag", "embedding", "class", "prompt", "quality", "speech", "cost")
SR = DEFAULT_SPEC.sample_rate


@dataclass(frozen=True)
class EvalOptions:
    """Settings of an evaluation run.

    Attributes:
        metrics: the metric groups to compute (see ``v2a.eval.runner``).
        classifier: sound-classifier checkpoint directory (None: the bundled one).
        max_lag_s: largest |lag| the ``av_lag_s`` and ``ref_lag_s`` searches consider, in seconds.
        limit: score only the first ``limit`` clips (None: all).
    """

    metrics: tuple[str, ...] = METRIC_GROUPS
    classifier: str | None = None
    max_lag_s: float = MAX_LAG_S
    limit: int | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.metrics) - set(METRIC_GROUPS))
        if unknown:
            raise InputError(
                f"unknown metric group(s) {', '.join(unknown)}; choose from {', '.join(METRIC_GROUPS)}"
            )
        if not 0 < self.max_lag_s <= 10:
            raise InputError(f"max_lag_s must be in (0, 10] seconds, got {self.max_lag_s}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be a positive number of clips, got {self.limit}")


class Scorer:
    """The models behind the metrics, loaded on first use and shared across runs (a benchmark scoring
    several systems on one set embeds each reference and reads each video's motion only once).

    Args:
        options: which groups are needed and where the classifier is.
        embedder: aisfx embedder (None: the shared default).
        classifier: sound classifier (None: load ``options.classifier`` or the bundled one).
        offset_estimator: learned sync estimator (None: ``learned_offset_estimator()`` when it is available).
        transcriber: Whisper transcriber (None: the shared default, when the speech extra is installed).
    """

    def __init__(
        self,
        options: EvalOptions = EvalOptions(),
        *,
        embedder: SfxEmbedder | None = None,
        classifier: SoundClassifier | None = None,
        offset_estimator: OffsetEstimator | None = None,
        transcriber: Transcriber | None = None,
    ):
        self.options = options
        self._embedder = embedder
        self._classifier = classifier
        self._offset_estimator = offset_estimator
        self.offset_error: str | None = None
        self._transcriber = transcriber
        self.transcriber_error: str | None = None
        self._motion: dict[str, MotionTrack] = {}
        self._reference: dict[str, tuple[np.ndarray, Embedding | None, np.ndarray | None]] = {}

    @property
    def embedder(self) -> SfxEmbedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    @property
    def classifier(self) -> SoundClassifier:
        if self._classifier is None:
            self._classifier = load_classifier(self.options.classifier)
        return self._classifier

    @property
    def offset_estimator(self) -> OffsetEstimator | None:
        if self._offset_estimator is None and self.offset_error is None:
            try:
                self._offset_estimator = learned_offset_estimator()
            except ModelUnavailableError as err:
                self.offset_error = str(err)
        return self._offset_estimator

    @property
    def transcriber(self) -> Transcriber | None:
        if self._transcriber is None and self.transcriber_error is None:
            try:
                self._transcriber = default_transcriber()
            except ModelUnavailableError as err:
                self.transcriber_error = str(err)
        return self._transcriber

    def motion(self, video: str) -> MotionTrack:
        """The motion track of a video (read once per Scorer)."""
        if video not in self._motion:
            self._motion[video] = video_motion(video)
        return self._motion[video]

    def features(self, wav: np.ndarray) -> tuple[Embedding | None, np.ndarray | None]:
        """aisfx embedding and class posterior of a waveform (None for groups that are off)."""
        groups = set(self.options.metrics)
        emb = self.embedder.embed(wav, SR) if groups & {"embedding", "class", "prompt"} else None
        probs = (
            self.classifier.wave_proba(wav, emb) if emb is not None and groups & {"class", "prompt"} else None
        )
        return emb, probs

    def reference(self, row: ClipRow) -> tuple[np.ndarray, Embedding | None, np.ndarray | None] | None:
        """The clip's reference waveform with its features (cached by file), or None without audio."""
        if row.audio is None:
            return None
        key = f"{row.audio}|{row.video}|{row.duration_s}|{_stamp(row.audio)}"
        if key not in self._reference:
            wav = load_reference(row, SR)
            assert wav is not None
            self._reference[key] = (wav, *self.features(wav))
        return self._reference[key]


def _stamp(path: str) -> str:
    try:
        st = Path(path).stat()
    except OSError:
        return "missing"
    return f"{st.st_mtime_ns}-{st.st_size}"
