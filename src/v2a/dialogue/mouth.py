"""Mouth activity of the faces in a video: how open each visible mouth is, 25 times a second.

Faces are found and tracked by MediaPipe's face mesh (``mediapipe==0.10.21``, whose tflite models ship
inside the wheel; see ``v2a.dialogue.facemesh``).

Per frame and face, the **openness** is the inner-lip gap (landmarks 13-14) over the mouth width
(landmarks 61-291): about 0.02 closed, 0.3-0.6 wide open, independent of the face's size on screen.
``activity`` is that openness rescaled per face to 0..1 (its 5th and 95th percentiles), the series
``v2a.eval.speech.lip_sync`` compares with a speech envelope.

The **movement** is how much the mouth region changes between frames: the mouth area (1.6 x 1.2 mouth
widths) is cut out in face coordinates, so head and camera motion cancel, and its mean absolute change
is divided by its contrast, then averaged over 0.28 s. Speech spans from it matched the drawn speech
about as well as spans from the spread of the openness did (frame F1 on 15 held-out Foley-world talking
heads: 0.69 vs 0.70; 0.81 vs 0.85 on the 15 development clips), but the openness spread only separates
speech from the landmark jitter of drawn faces at a threshold of 0.01, far below what real faces jitter
(Megamind.avi: median 0.04), while the motion is normalised by contrast. ``spans`` are the stretches
where the movement stays above a threshold (someone speaks). Faces are followed from frame to frame by
their mouth position; in each frame the face whose mouth moves most is the one reported, so in a
two-shot the speaker wins.

Frames are read on the same timeline as ``v2a.encoders.motion.video_motion``: frame k of a window is at
``start_s + k / 25`` and shows the picture on screen then.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from v2a.dialogue.facemesh import MAX_FACES, FaceMesh, quiet_stderr
from v2a.io.video import iter_frames, probe

__all__ = ["MOUTH_FPS", "MouthActivity", "mouth_from_frames", "video_mouth"]

MOUTH_FPS = 25.0
_MIN_SIDE, _MAX_SIDE = 480, 640  # long side of the picture the face mesh sees (small videos are upscaled)
_MOVE_WINDOW_S = 0.28  # mouth motion is averaged over this window
_SPEAKING = 0.12  # mean mouth motion above which a mouth counts as speaking (see ``spans``)
_PATCH = (32, 24)  # width, height of the aligned mouth picture whose change is the mouth motion
_GAP_S = 0.35  # pauses between words shorter than this do not end a span
_MIN_SPAN_S = 0.3


@dataclass(frozen=True)
class MouthActivity:
    """Per-frame mouth activity of a video window.

    Attributes:
        times_s: (T,) float64 frame times on the video timeline.
        openness: (T,) float32 lip gap over mouth width of the reported face (0 where no face is seen).
        activity: (T,) float32 the same rescaled to 0..1 per face (0 where no face is seen).
        movement: (T,) float32 that face's mouth motion averaged over 0.28 s (still ~0.05, speaking ~0.2).
        face: (T,) bool whether a face is seen in the frame.
        fps: the frame rate of the series.
    """

    times_s: np.ndarray
    openness: np.ndarray
    activity: np.ndarray
    movement: np.ndarray
    face: np.ndarray
    fps: float = MOUTH_FPS

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def face_fraction(self) -> float:
        """Share of frames in which a face is seen."""
        return float(self.face.mean()) if len(self) else 0.0

    def spans(
        self, *, threshold: float = _SPEAKING, gap_s: float = _GAP_S, min_span_s: float = _MIN_SPAN_S
    ) -> list[tuple[float, float]]:
        """Stretches of mouth movement (speech), as ``(start_s, end_s)`` on the video timeline.

        Args:
            threshold: openness spread above which a frame counts as moving.
            gap_s: shorter pauses inside a stretch are bridged.
            min_span_s: shorter stretches are dropped.

        Returns:
            Spans in time order, not overlapping.
        """
        moving = self.face & (self.movement > threshold)
        spans: list[list[float]] = []
        step = 1.0 / self.fps
        for t in self.times_s[moving]:
            if spans and t - spans[-1][1] <= gap_s + step / 2:
                spans[-1][1] = float(t) + step
            else:
                spans.append([float(t), float(t) + step])
        return [(a, b) for a, b in spans if b - a >= min_span_s - 1e-9]


# ---- tracks of faces ----


class _Tracks:
    """Per face track: lip openness and mouth motion; each detected mouth joins the nearest track."""

    def __init__(self, max_faces: int):
        self.open: list[list[float]] = [[] for _ in range(max_faces)]
        self.motion: list[list[float]] = [[] for _ in range(max_faces)]
        self.centre: list[np.ndarray | None] = [None] * max_faces
        self.patch: list[np.ndarray | None] = [None] * max_faces

    def push(self, lips: np.ndarray, frame: np.ndarray) -> None:
        """Add one frame: its faces' (F, 4, 2) lip landmarks and the (H, W, 3) RGB picture they are on."""
        K = len(self.open)
        opens, motions = [math.nan] * K, [math.nan] * K
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) if len(lips) else None
        free = list(range(K))
        for face in lips[:K]:
            centre, width = face.mean(axis=0), max(float(np.linalg.norm(face[3] - face[2])), 1e-6)
            slot = self._slot(free, centre, width)
            free.remove(slot)
            patch = _mouth_patch(grey, centre, width)
            if self.patch[slot] is not None:
                motions[slot] = float(np.abs(patch - self.patch[slot]).mean()) / (float(patch.std()) + 5.0)
            self.centre[slot], self.patch[slot] = centre, patch
            opens[slot] = float(np.linalg.norm(face[1] - face[0])) / width
        for k in free:  # a face that is not seen now starts afresh when it comes back
            self.patch[k] = None
        for k in range(K):
            self.open[k].append(opens[k])
            self.motion[k].append(motions[k])

    def _slot(self, free: list[int], centre: np.ndarray, width: float) -> int:
        """The free track whose last mouth is nearest (within two mouth widths), else an empty one."""
        known = [i for i in free if self.centre[i] is not None]
        near = min(known, key=lambda i: float(np.linalg.norm(self.centre[i] - centre)), default=None)
        if near is not None and np.linalg.norm(self.centre[near] - centre) < 2 * width:
            return near
        empty = [i for i in free if self.centre[i] is None]
        return empty[0] if empty else free[0]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(K, T) openness and (K, T) mouth motion per track (NaN where the track has no face)."""
        K = len(self.open)
        return (
            np.asarray(self.open, np.float64).reshape(K, -1),
            np.asarray(self.motion, np.float64).reshape(K, -1),
        )


def _mouth_patch(grey: np.ndarray, centre: np.ndarray, width: float) -> np.ndarray:
    """The mouth region (1.6 x 1.2 mouth widths around its centre) resampled to 32 x 24 pixels, so
    consecutive patches line up in face coordinates whatever the head or camera does."""
    x0, y0 = centre[0] - 0.8 * width, centre[1] - 0.6 * width
    x1, y1 = centre[0] + 0.8 * width, centre[1] + 0.6 * width
    src = np.float32([[x0, y0], [x1, y0], [x0, y1]])
    dst = np.float32([[0, 0], [_PATCH[0], 0], [0, _PATCH[1]]])
    return cv2.warpAffine(grey, cv2.getAffineTransform(src, dst), _PATCH, flags=cv2.INTER_AREA)


def _window_mean(series: np.ndarray, half: int) -> np.ndarray:
    """Mean of the seen values (not NaN) within ``±half`` frames; NaN where the frame itself is NaN."""
    out = np.full(series.shape, np.nan)
    for t in np.flatnonzero(~np.isnan(series)):
        window = series[max(0, t - half) : t + half + 1]
        out[t] = np.nanmean(window)
    return out


def _rescale(series: np.ndarray) -> np.ndarray:
    """A track's openness mapped to 0..1 by its 5th and 95th percentiles (NaN kept)."""
    seen = series[~np.isnan(series)]
    if seen.size == 0:
        return series
    lo, hi = np.percentile(seen, [5, 95])
    return np.clip((series - lo) / max(hi - lo, 0.05), 0.0, 1.0)


def _combine(opens: np.ndarray, motions: np.ndarray, times: np.ndarray, fps: float) -> MouthActivity:
    """Per frame, report the face whose mouth moves most."""
    K, T = opens.shape
    if K == 0 or T == 0:
        zeros = np.zeros(T, np.float32)
        return MouthActivity(times, zeros, zeros, zeros, np.zeros(T, bool), fps)
    half = max(1, round(_MOVE_WINDOW_S * fps / 2))
    seen = ~np.isnan(opens)
    motions = np.where(seen, np.nan_to_num(motions), np.nan)  # a face's first frame has no motion yet
    moving = np.stack([_window_mean(m, half) for m in motions])  # (K, T)
    scaled = np.stack([_rescale(o) for o in opens])
    face = seen.any(axis=0)
    pick = np.argmax(np.nan_to_num(moving, nan=-1.0), axis=0)  # (T,)
    cols = np.arange(T)

    def chosen(a: np.ndarray) -> np.ndarray:
        return np.where(face, np.nan_to_num(a[pick, cols]), 0.0).astype(np.float32)

    return MouthActivity(times, chosen(opens), chosen(scaled), chosen(moving), face, fps)


# ---- public API ----


def mouth_from_frames(
    frames: np.ndarray,
    times_s: np.ndarray | None = None,
    *,
    fps: float = MOUTH_FPS,
    max_faces: int = MAX_FACES,
) -> MouthActivity:
    """Mouth activity of frames already sampled at ``fps``.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames (faces should span at least ~40 pixels).
        times_s: (T,) their times; None means ``arange(T) / fps``.
        fps: the frames' rate.
        max_faces: faces followed at once.

    Returns:
        The activity series.

    Raises:
        ModelUnavailableError: mediapipe is not installed.
        ValueError: frames or times of the wrong shape.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
    times = np.arange(len(frames)) / fps if times_s is None else np.asarray(times_s, np.float64)
    if times.shape != (len(frames),):
        raise ValueError(f"{times.shape=} does not match {len(frames)} frames")
    tracks = _Tracks(max_faces)
    with quiet_stderr():  # mediapipe's C++ logs model details while it starts
        mesh = FaceMesh(max_faces)
        try:
            for frame in frames:
                frame = _fit(frame)
                tracks.push(mesh.lips(frame), frame)
        finally:
            mesh.close()
    return _combine(*tracks.arrays(), times, fps)


def video_mouth(
    path: str | os.PathLike,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    fps: float = MOUTH_FPS,
    max_faces: int = MAX_FACES,
) -> MouthActivity:
    """Mouth activity of a video file (or a window of it), streamed.

    Args:
        path: the video.
        start_s: first frame time on the video timeline.
        duration_s: window length (None: to the end).
        fps: rate of the series.
        max_faces: faces followed at once.

    Returns:
        The activity series; frame k is at ``start_s + k / fps``.

    Raises:
        InputError: the video is unreadable or the window is outside it.
        ModelUnavailableError: mediapipe is not installed.
    """
    info = probe(path)
    size = _mesh_size(info.width * info.sample_aspect_ratio, info.height, info.rotation)
    tracks = _Tracks(max_faces)
    times = []
    with quiet_stderr():  # mediapipe's C++ logs model details while it starts
        mesh = FaceMesh(max_faces)
        try:
            for piece in iter_frames(
                path, fps, size=size, resize="stretch", start_s=start_s, duration_s=duration_s, chunk=64
            ):
                for frame in piece.frames:
                    tracks.push(mesh.lips(frame), frame)
                times.append(piece.times_s)
        finally:
            mesh.close()
    return _combine(*tracks.arrays(), np.concatenate(times) if times else np.zeros(0), fps)


def _mesh_size(width: float, height: float, rotation: int) -> tuple[int, int]:
    """(height, width) of the picture handed to the face mesh: the upright aspect, long side 480-640."""
    if rotation % 180:
        width, height = height, width
    long = max(width, height)
    scale = min(max(long, _MIN_SIDE), _MAX_SIDE) / long
    return max(2, round(height * scale / 2) * 2), max(2, round(width * scale / 2) * 2)


def _fit(frame: np.ndarray) -> np.ndarray:
    """A frame scaled so its long side is 480-640 pixels (what ``video_mouth`` asks the reader for)."""
    h, w = frame.shape[:2]
    size = _mesh_size(w, h, 0)
    if size == (h, w):
        return frame
    return cv2.resize(
        frame, (size[1], size[0]), interpolation=cv2.INTER_AREA if w > size[1] else cv2.INTER_CUBIC
    )
