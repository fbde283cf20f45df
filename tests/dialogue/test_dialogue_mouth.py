"""Mouth activity from the face mesh: on a drawn Foley-world talking head and on a real film clip."""

from __future__ import annotations

import numpy as np
import pytest

from v2a.dialogue.mouth import MOUTH_FPS, mouth_from_frames, video_mouth
from v2a.eval.speech import lip_sync
from v2a.io.video import read_video

pytest.importorskip("mediapipe", reason="the face mesh (mediapipe 0.10.21) is not installed")

SR = 24_000


@pytest.fixture(scope="module")
def head_mouth(talking_head):
    return video_mouth(talking_head.video)


def test_the_face_is_found_in_every_frame_on_the_25_fps_timeline(talking_head, head_mouth) -> None:
    m = head_mouth
    assert len(m) == 125 and m.fps == MOUTH_FPS
    np.testing.assert_allclose(m.times_s, np.arange(125) / 25.0, atol=1e-9)
    assert m.face_fraction == 1.0


def test_movement_rises_while_the_drawn_mouth_speaks(talking_head, head_mouth) -> None:
    m = head_mouth
    t0, t1 = talking_head.speech
    speaking = (m.times_s >= t0 + 0.15) & (m.times_s < t1 - 0.15)
    still = (m.times_s < t0 - 0.3) | (m.times_s > t1 + 0.5)
    assert m.movement[speaking].mean() > 2.5 * m.movement[still].mean()
    # 0.12 is the threshold of speaking spans
    assert np.percentile(m.movement[speaking], 10) > 0.12 > np.percentile(m.movement[still], 90)
    # the measured openness follows the drawn one, frame by frame
    assert np.corrcoef(m.activity, talking_head.mouth)[0, 1] > 0.5


def test_the_speaking_span_matches_the_line(talking_head, head_mouth) -> None:
    (span,) = head_mouth.spans()
    t0, t1 = talking_head.speech
    overlap = min(span[1], t1) - max(span[0], t0)
    union = max(span[1], t1) - min(span[0], t0)
    assert overlap / union > 0.7, (span, talking_head.speech)


def test_activity_correlates_with_the_clips_own_speech(talking_head, head_mouth) -> None:
    r = lip_sync(head_mouth.activity, head_mouth.fps, talking_head.audio, SR)
    shifted = lip_sync(head_mouth.activity, head_mouth.fps, np.roll(talking_head.audio, 2 * SR), SR)
    assert r["lip_corr"] > 0.4 and r["lip_corr"] > shifted["lip_corr"] + 0.3


def test_a_still_face_has_no_speaking_span(talking_head) -> None:
    first = read_video(talking_head.video, 25.0, duration_s=0.04)[0].frames[:1]  # mouth closed
    m = mouth_from_frames(np.repeat(first, 50, axis=0))
    assert m.face_fraction == 1.0
    assert m.spans() == []
    assert m.movement.max() < 0.05


def test_no_face_no_activity() -> None:
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (1, 90, 160, 3), dtype=np.uint8), 20, axis=0)
    frames[10:] = 255 - frames[10:]  # a cut: the picture changes, but there is no face
    m = mouth_from_frames(frames)
    assert not m.face.any() and m.spans() == []
    assert not m.activity.any() and not m.movement.any()


def test_a_window_reads_only_its_frames(talking_head, head_mouth) -> None:
    part = video_mouth(talking_head.video, start_s=1.0, duration_s=2.0)
    assert len(part) == 50
    np.testing.assert_allclose(part.times_s, 1.0 + np.arange(50) / 25.0, atol=1e-9)
    # the same picture gives the same openness (the tracker starts afresh, so allow a few frames to settle)
    assert np.abs(part.openness[5:] - head_mouth.openness[30:75]).mean() < 0.02


def test_bad_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        mouth_from_frames(np.zeros((3, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="does not match"):
        mouth_from_frames(np.zeros((3, 8, 8, 3), np.uint8), times_s=np.zeros(2))


def test_real_film_clip_faces_and_lip_sync(megamind) -> None:
    """Megamind.avi (Debian opencv-doc): a real dialogue scene, shot / reverse shot, 11 s."""
    path, audio = megamind
    m = video_mouth(path)
    assert m.face_fraction > 0.9
    assert sum(b - a for a, b in m.spans()) > 0.5 * (
        m.times_s[-1] - m.times_s[0]
    )  # they talk most of the time
    r = lip_sync(m.openness, m.fps, audio, SR)["lip_corr"]
    rng = np.random.default_rng(0)
    control = [
        lip_sync(m.openness, m.fps, np.roll(audio, int(k)), SR)["lip_corr"]
        for k in rng.integers(SR, audio.size - SR, 20)
    ]
    assert r > 0.1 and r > np.mean(control) + 0.1, (r, np.mean(control))
