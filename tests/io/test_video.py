from __future__ import annotations

import json
import math
import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest

from media import counter_frame, make_counter_video, marker_corner, read_counter
from v2a.errors import InputError
from v2a.io.video import FrameChunk, VideoLimits, iter_frames, probe, read_video
from v2a.io.writer import write_video

RATES = (8.0, 25.0)


def _expected_index(source_times: np.ndarray, out_times: np.ndarray) -> np.ndarray:
    """Sample and hold: the last source frame whose time is <= the output time."""
    return np.searchsorted(source_times, out_times + 1e-6, side="right") - 1


def _counters(frames: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    return np.array([read_counter(f, box) for f in frames])


def _check_resampled(path, source_times: np.ndarray, duration_s: float, **kwargs) -> list:
    """Read ``path`` at 8 and 25 fps; check counts, times and the counter in every output frame."""
    seqs = read_video(path, RATES, **kwargs)
    for seq, rate in zip(seqs, RATES, strict=True):
        count = math.ceil(duration_s * rate - 1e-6)
        assert len(seq) == count, (rate, len(seq), count)
        np.testing.assert_allclose(seq.times_s, np.arange(count) / rate, atol=1e-9)
        assert seq.frames.dtype == np.uint8 and seq.frames.shape[0] == count and seq.frames.shape[-1] == 3
        expected = _expected_index(source_times, seq.times_s)
        np.testing.assert_array_equal(_counters(seq.frames), expected, err_msg=f"{path.name} at {rate} fps")
    return seqs


@pytest.mark.parametrize(
    "fps", [24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60.0], ids=lambda f: f"{f:.3f}"
)
def test_constant_rate_sources_resample_by_timestamp(tmp_path, fps):
    num = round(2.5 * fps)
    path = make_counter_video(tmp_path / "c.mp4", fps=fps, num_frames=num, bframes=3)
    info = probe(path)
    assert info.fps == pytest.approx(fps, rel=1e-4)
    assert info.num_frames == num
    assert info.duration_s == pytest.approx(num / fps, abs=1e-4)
    assert not info.is_vfr
    _check_resampled(path, np.arange(num) / fps, num / fps)


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm"])
def test_variable_rate_source(tmp_path, ext):
    rng = np.random.default_rng(7)
    intervals_ms = rng.choice([10, 17, 33, 40, 66, 100, 150], size=60)  # on the 1 ms Matroska clock
    times = np.concatenate([[0.0], np.cumsum(intervals_ms[:-1]) / 1000])
    codec = "libvpx-vp9" if ext == ".webm" else "libx264"
    path = make_counter_video(tmp_path / f"v{ext}", fps=30, timestamps_s=times, codec=codec)
    info = probe(path)
    assert info.is_vfr
    assert info.num_frames == pytest.approx(60, abs=1)
    assert 0 < info.duration_s - times[-1] <= 0.2  # the last frame lasts a while
    _check_resampled(path, times, info.duration_s)


ENCODINGS = [
    ("libx264", ".mp4", "h264"),
    ("libx264", ".mkv", "h264"),
    ("libx264", ".mov", "h264"),
    ("libvpx", ".webm", "vp8"),
    ("libvpx-vp9", ".webm", "vp9"),
    ("mpeg4", ".avi", "mpeg4"),
    ("mjpeg", ".avi", "mjpeg"),
    ("gif", ".gif", "gif"),
    ("libvpx", ".ogv", "vp8"),
    ("libtheora", ".ogv", "theora"),
]


@pytest.mark.parametrize(("codec", "ext", "decoder"), ENCODINGS, ids=[f"{c}{e}" for c, e, _ in ENCODINGS])
def test_containers_and_codecs(tmp_path, codec, ext, decoder):
    try:
        av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this FFmpeg build cannot encode {codec} (decoding it is still supported)")
    path = make_counter_video(tmp_path / f"v{ext}", fps=25, num_frames=40, codec=codec)
    info = probe(path)
    assert info.codec == decoder
    assert (info.width, info.height) == (160, 96)
    assert info.fps == pytest.approx(25)
    _check_resampled(path, np.arange(40) / 25, 40 / 25)


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_gives_upright_frames(tmp_path, rotation):
    path = make_counter_video(
        tmp_path / "r.mp4", fps=25, num_frames=25, width=160, height=96, rotation=rotation
    )
    info = probe(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == (160, 96)
    coded = (96, 160) if rotation in (90, -90) else (160, 96)
    assert (info.coded_width, info.coded_height) == coded
    eight, _ = _check_resampled(path, np.arange(25) / 25, 1.0)
    assert eight.frames.shape[1:] == (96, 160, 3)
    assert all(marker_corner(f) == "top-left" for f in eight.frames)


def test_rotation_agrees_with_ffmpeg_autorotate(tmp_path):
    """Compare with the filters FFmpeg's own tools insert for a display matrix (fftools get_rotation):
    theta = -rotation; theta 90 -> transpose=clock, theta 270 -> transpose=cclock."""
    for rotation, transpose in [(-90, "clock"), (90, "cclock")]:
        path = make_counter_video(tmp_path / f"r{rotation}.mkv", fps=25, num_frames=3, rotation=rotation)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            raw = next(container.decode(stream))
            graph = av.filter.Graph()
            src = graph.add_buffer(template=stream)
            flt = graph.add("transpose", transpose)
            sink = graph.add("buffersink")
            src.link_to(flt)
            flt.link_to(sink)
            graph.configure()
            graph.push(raw)
            reference = graph.pull().to_ndarray(format="rgb24")
        (ours,) = read_video(path, 25.0)
        assert ours.frames[0].shape == reference.shape
        assert np.abs(ours.frames[0].astype(int) - reference.astype(int)).mean() < 2.0


def test_odd_size_and_resize_modes(tmp_path):
    path = make_counter_video(
        tmp_path / "odd.webm", fps=25, num_frames=25, width=161, height=97, codec="libvpx-vp9"
    )
    info = probe(path)
    assert (info.width, info.height) == (161, 97)
    native, _ = _check_resampled(path, np.arange(25) / 25, 1.0)
    assert native.frames.shape[1:] == (97, 161, 3)

    (crop,) = read_video(path, 8, size=64)
    assert crop.frames.shape[1:] == (64, 64, 3)
    np.testing.assert_array_equal(_counters(crop.frames), np.arange(8) * 25 // 8)

    (box,) = read_video(path, 8, size=64, resize="letterbox")
    assert box.frames.shape[1:] == (64, 64, 3)
    content = round(97 * 64 / 161)  # 39 rows of picture, black bars above and below
    top = (64 - content) // 2
    assert box.frames[:, : top - 1].max() == 0 and box.frames[:, top + content + 1 :].max() == 0
    np.testing.assert_array_equal(_counters(box.frames, (top, 0, top + content, 64)), np.arange(8) * 25 // 8)

    (wide,) = read_video(path, 8, size=(40, 120), resize="letterbox")
    assert wide.frames.shape[1:] == (40, 120, 3)
    content_w = round(161 * 40 / 97)
    left = (120 - content_w) // 2
    assert wide.frames[:, :, : left - 1].max() == 0
    np.testing.assert_array_equal(
        _counters(wide.frames, (0, left, 40, left + content_w)), np.arange(8) * 25 // 8
    )

    (stretch,) = read_video(path, 8, size=(48, 80), resize="stretch")  # nearly the same aspect ratio
    assert stretch.frames.shape[1:] == (48, 80, 3)
    np.testing.assert_array_equal(_counters(stretch.frames), np.arange(8) * 25 // 8)


def test_crop_keeps_the_centre(tmp_path):
    path = make_counter_video(tmp_path / "c.mp4", fps=25, num_frames=5, width=192, height=96)
    (native,) = read_video(path, 25)
    (crop,) = read_video(path, 25, size=(48, 48))
    # The centre square of the upright frame, scaled by half: compare with a box-filtered reference.
    reference = native.frames[:, :, 48:144].reshape(5, 48, 2, 48, 2, 3).mean(axis=(2, 4))
    assert np.abs(crop.frames.astype(float) - reference).mean() < 6
    assert marker_corner(native.frames[0]) == "top-left"


def test_sample_aspect_ratio_is_applied(tmp_path):
    path = tmp_path / "sar.mp4"
    picture = counter_frame(3, 64, 192)[:, ::2]  # squeezed to half width: pixels are 2:1
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path)
    assert (info.width, info.height, info.sample_aspect_ratio) == (192, 64, 2.0)
    (seq,) = read_video(path, 25)
    assert seq.frames.shape == (3, 64, 192, 3)
    assert read_counter(seq.frames[0]) == 3


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_start_time_not_zero(tmp_path, ext):
    path = make_counter_video(tmp_path / f"s{ext}", fps=25, num_frames=50, start_s=1.5, audio=True)
    info = probe(path)
    assert info.start_time_s == pytest.approx(1.5, abs=2e-3)
    assert info.duration_s == pytest.approx(2.0, abs=1e-3)
    assert info.audio_start_s == pytest.approx(-1.5, abs=0.05)  # the audio starts at container time 0
    _check_resampled(path, np.arange(50) / 25, 2.0)


@pytest.mark.parametrize(("ext", "rate", "codec"), [(".mp4", 24_000, "aac"), (".webm", 48_000, "opus")])
def test_with_and_without_audio(tmp_path, ext, rate, codec):
    video_codec = "libvpx" if ext == ".webm" else "libx264"
    silent = make_counter_video(tmp_path / f"silent{ext}", fps=25, num_frames=25, codec=video_codec)
    loud = make_counter_video(tmp_path / f"loud{ext}", fps=25, num_frames=25, codec=video_codec, audio=True)
    quiet, noisy = probe(silent), probe(loud)
    fields = ("has_audio", "audio_rate", "audio_channels", "audio_codec")
    assert [getattr(quiet, f) for f in fields] == [False, None, None, None]
    assert [getattr(noisy, f) for f in fields] == [True, rate, 1, codec]
    assert abs(noisy.audio_start_s) < 0.05
    for path in (silent, loud):
        _check_resampled(path, np.arange(25) / 25, 1.0)


def test_chunks_stream_the_same_frames(tmp_path):
    path = make_counter_video(tmp_path / "c.mkv", fps=30, num_frames=90)
    whole = read_video(path, RATES, size=32)
    chunks = list(iter_frames(path, RATES, size=32, chunk=7))
    assert all(isinstance(c, FrameChunk) and 0 < len(c.times_s) <= 7 for c in chunks)
    assert {c.rate_index for c in chunks[:5]} == {0, 1}  # rates are interleaved, not one after another
    for index, seq in enumerate(whole):
        mine = [c for c in chunks if c.rate_index == index]
        np.testing.assert_array_equal(np.concatenate([c.frames for c in mine]), seq.frames)
        np.testing.assert_array_equal(np.concatenate([c.times_s for c in mine]), seq.times_s)


def test_streaming_memory_stays_bounded(tmp_path):
    path = make_counter_video(tmp_path / "long.mp4", fps=25, num_frames=500, width=320, height=240)
    whole_bytes = 500 * 320 * 240 * 3  # 115 MB: what holding every frame would take
    tracemalloc.start()
    try:
        last_time = -1.0
        for chunk in iter_frames(path, [25, 8], chunk=16):
            last_time = max(last_time, float(chunk.times_s[-1]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last_time == pytest.approx(19.96)
    assert peak < whole_bytes / 5, peak


def test_stopping_early_is_cheap_and_clean(tmp_path):
    path = make_counter_video(tmp_path / "c.mp4", fps=25, num_frames=100)
    stream = iter_frames(path, 25, chunk=4)
    first = next(stream)
    stream.close()
    np.testing.assert_array_equal(_counters(first.frames), [0, 1, 2, 3])


@pytest.mark.parametrize("keyint", [250, 10])
def test_window_with_start_and_duration(tmp_path, keyint):
    path = tmp_path / "w.mp4"
    frames = [counter_frame(i, 64, 96) for i in range(75)]
    with av.open(str(path), "w") as container:  # short GOPs make the reader seek
        stream = container.add_stream("libx264", rate=25, options={"g": str(keyint), "bf": "2"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i, picture in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    eight, fast = read_video(path, RATES, start_s=1.3, duration_s=0.9)
    np.testing.assert_allclose(eight.times_s, 1.3 + np.arange(8) / 8)
    np.testing.assert_allclose(fast.times_s, 1.3 + np.arange(23) / 25)
    for seq in (eight, fast):
        np.testing.assert_array_equal(_counters(seq.frames), np.floor(seq.times_s * 25 + 1e-6).astype(int))
    (tail,) = read_video(path, 8, start_s=2.5)  # to the end: 2.5 .. 2.875
    np.testing.assert_array_equal(_counters(tail.frames), [62, 65, 68, 71])


def test_probe_to_dict_has_the_cli_keys(tmp_path):
    path = make_counter_video(tmp_path / "p.mp4", fps=30, num_frames=30, audio=True)
    info = probe(path).to_dict()
    for key in ("duration_s", "fps", "width", "height", "rotation", "has_audio", "audio_rate", "codec"):
        assert key in info
    assert json.loads(json.dumps(info)) == info
    assert (info["width"], info["height"], info["codec"], info["audio_rate"]) == (160, 96, "h264", 24_000)


def _bad_files(tmp_path):
    """(path, words the message must contain) for every kind of unusable input."""
    good = make_counter_video(tmp_path / "good.mp4", fps=25, num_frames=50)
    data = good.read_bytes()
    cases = []
    cases.append((tmp_path / "missing.mp4", "no such file"))
    (tmp_path / "folder.mp4").mkdir()
    cases.append((tmp_path / "folder.mp4", "directory"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases.append((tmp_path / "empty.mp4", "empty"))
    (tmp_path / "notes.txt").write_text("not a video\n" * 50)
    cases.append((tmp_path / "notes.txt", "not a video"))
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
    cases.append((tmp_path / "noise.mp4", "not a video"))
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    cases.append((tmp_path / "cut.mp4", "truncated"))
    mkv = make_counter_video(tmp_path / "long.mkv", fps=25, num_frames=150).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(mkv[: len(mkv) // 3])
    cases.append((tmp_path / "cut.mkv", "truncated"))
    import soundfile as sf

    sf.write(tmp_path / "speech.wav", np.zeros(8000), 8000)
    cases.append((tmp_path / "speech.wav", "no video stream"))
    from PIL import Image

    Image.fromarray(counter_frame(1, 32, 32)).save(tmp_path / "still.png")
    cases.append((tmp_path / "still.png", "still image"))
    avi = make_counter_video(tmp_path / "v.avi", fps=25, num_frames=5, codec="mpeg4").read_bytes()
    assert avi.count(b"FMP4") == 2
    (tmp_path / "alien.avi").write_bytes(avi.replace(b"FMP4", b"ZQZQ"))  # a codec tag no decoder knows
    cases.append((tmp_path / "alien.avi", "unsupported video codec"))
    wide = write_video(tmp_path / "wide.webm", np.zeros((2, 16, 8200, 3), np.uint8), codec="libvpx-vp9")
    cases.append((wide, "8200x16 exceeds the limit"))
    return cases


def test_every_bad_input_is_one_clear_input_error(tmp_path):
    for path, words in _bad_files(tmp_path):
        with pytest.raises(InputError) as caught:
            probe(path)
        message = str(caught.value)
        assert words in message, (path.name, message)
        assert path.name in message and "\n" not in message, message
        with pytest.raises(InputError):
            read_video(path, 8)


def test_limits_are_configurable(tmp_path):
    path = make_counter_video(tmp_path / "c.mp4", fps=25, num_frames=50, width=160, height=96)
    with pytest.raises(InputError, match=r"more than the limit of 1\.0 s"):
        probe(path, limits=VideoLimits(max_duration_s=1.0))
    with pytest.raises(InputError, match="exceeds the limit"):
        read_video(path, 8, limits=VideoLimits(max_width=100))
    with pytest.raises(InputError, match="exceeds the limit"):
        probe(path, limits=VideoLimits(max_pixels=160 * 96 - 1))
    assert probe(path, limits=VideoLimits(max_width=160, max_height=96, max_pixels=160 * 96)).width == 160


def test_bad_arguments_are_input_errors(tmp_path):
    path = make_counter_video(tmp_path / "c.mp4", fps=25, num_frames=25)
    for kwargs, words in [
        ({"fps": 0}, "fps"),
        ({"fps": [8, float("nan")]}, "fps"),
        ({"fps": []}, "fps"),
        ({"fps": 8, "size": 0}, "size"),
        ({"fps": 8, "size": (10, 20, 30)}, "size"),
        ({"fps": 8, "resize": "squash"}, "resize"),
        ({"fps": 8, "start_s": -1.0}, "start"),
        ({"fps": 8, "start_s": 5.0}, "past the end"),
        ({"fps": 8, "duration_s": 0.0}, "duration"),
    ]:
        with pytest.raises(InputError, match=words):
            read_video(path, **kwargs)


@pytest.mark.parametrize("bframes", [0, 3, 8])
def test_constant_rate_with_bframes_is_not_reported_as_vfr(tmp_path, bframes):
    path = make_counter_video(
        tmp_path / f"cfr_b{bframes}.mp4", fps=25, num_frames=150, codec="libx264", bframes=bframes
    )
    info = probe(path)
    assert not info.is_vfr
    assert info.fps == pytest.approx(25.0) and info.num_frames == 150
