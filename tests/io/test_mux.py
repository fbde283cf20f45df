"""Muxing: video packets copied bit-exactly, audio fitted to the video span, codecs, tracks, tags, safety."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from v2a.errors import InputError, OutputError
from v2a.io.audio import save_audio
from v2a.io.mux import mux, video_span
from v2a.io.writer import write_video

FPS = 25
N_FRAMES = 30  # 1.2 s
# Samples per coded frame: the tolerance for matching the audio span to the video span.
FRAME_SAMPLES = {"aac": 1024, "opus": 960, "flac": 1, "pcm": 1}
CODEC_NAME = {"aac": "aac", "opus": "opus", "flac": "flac", "pcm": "pcm_s16le"}


def make_video(path: Path, *, codec: str = "libx264", start: float = 0.0, **kwargs) -> Path:
    frames = np.random.default_rng(0).integers(0, 255, (N_FRAMES, 48, 64, 3), dtype=np.uint8)
    stamps = [start + i / FPS for i in range(N_FRAMES)] if start else None
    return write_video(path, frames, fps=FPS, codec=codec, timestamps_s=stamps, **kwargs)


def packets(path: Path, kind: str = "video", index: int = 0) -> tuple[str, list[float], bytes]:
    """(sha256 of all payloads, presentation times in s, extradata) of one stream."""
    digest, times = hashlib.sha256(), []
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[index]
        extradata = bytes(stream.codec_context.extradata or b"")
        for packet in container.demux(stream):
            if packet.size:
                digest.update(bytes(packet))
                times.append(round(float(packet.pts * packet.time_base), 6))
    return digest.hexdigest(), times, extradata


def decode_audio(path: Path, index: int = 0) -> tuple[float, np.ndarray, int, str]:
    """(time of the first decoded sample, (S,) first-channel samples, rate, codec) of an audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[index]
        frames = list(container.decode(stream))
        samples = np.concatenate([f.to_ndarray().reshape(-1, f.samples)[0] for f in frames])
        if samples.dtype == np.int16:
            samples = samples / 32768.0
        return float(frames[0].time), samples.astype(np.float64), stream.rate, stream.codec_context.name


def click_track(sr: int, seconds: float, at: float = 0.3) -> np.ndarray:
    """Quiet tone (so lossy codecs have something to code) with a loud 2 ms click at ``at`` seconds."""
    t = np.arange(round(sr * seconds)) / sr
    wav = 0.05 * np.sin(2 * np.pi * 440 * t)
    k = round(at * sr)
    wav[k : k + sr // 500] = 0.9
    return wav.astype(np.float32)


def onset(samples: np.ndarray, rate: int) -> float:
    return float(np.argmax(np.abs(samples) > 0.5)) / rate


# ---------------------------------------------------------------- the video stream is untouched


@pytest.mark.parametrize(
    ("src_ext", "codec", "out_ext", "kwargs"),
    [
        ("mp4", "libx264", "mp4", {}),
        ("webm", "libvpx-vp9", "webm", {}),
        ("mkv", "libx264", "mkv", {}),
        ("mov", "libx264", "mov", {}),
        ("mp4", "libx264", "mp4", {"rotation": 90}),
        ("mp4", "libx264", "mp4", {"start": 1.0}),
        ("mkv", "libx264", "mkv", {"start": 0.6}),
        ("mkv", "libx264", "mp4", {}),
        ("webm", "libvpx-vp9", "mkv", {}),
    ],
)
def test_video_packets_are_copied_bit_exactly(
    tmp_path: Path, src_ext: str, codec: str, out_ext: str, kwargs: dict
) -> None:
    video = make_video(tmp_path / f"in.{src_ext}", codec=codec, **kwargs)
    out = mux(video, (click_track(24_000, 1.0), 24_000), tmp_path / f"out.{out_ext}")
    before, after = packets(video), packets(out)
    assert after[0] == before[0]  # payload bytes
    assert after[1] == before[1]  # presentation times
    assert after[2] == before[2]  # codec extradata (SPS/PPS, vpcC)
    with av.open(str(video)) as a, av.open(str(out)) as b:
        assert (b.streams.video[0].width, b.streams.video[0].height) == (64, 48)
        first_in, first_out = next(a.decode(video=0)), next(b.decode(video=0))
        assert first_out.rotation == first_in.rotation == kwargs.get("rotation", 0)
        assert len(b.streams.audio) == 1
    assert video_span(out) == video_span(video)


def test_video_span(tmp_path: Path) -> None:
    span = video_span(make_video(tmp_path / "v.mkv", start=0.6))
    assert float(span.start) == pytest.approx(0.6, abs=1e-3)
    assert float(span.duration) == pytest.approx(N_FRAMES / FPS, abs=1e-3)


# ---------------------------------------------------------------- the audio fits the video


@pytest.mark.parametrize(
    ("audio_codec", "out_ext", "start"),
    [("aac", "mp4", 0.0), ("flac", "mkv", 0.0), ("opus", "webm", 0.0), ("pcm", "mov", 0.0),
     ("aac", "mkv", 0.6), ("opus", "mkv", 0.6), ("flac", "mp4", 1.0), ("aac", "mp4", 1.0)],
)  # fmt: skip
@pytest.mark.parametrize("audio_s", [0.7, 3.0])
def test_audio_spans_the_video(
    tmp_path: Path, audio_codec: str, out_ext: str, start: float, audio_s: float
) -> None:
    sr = 24_000
    video = make_video(
        tmp_path / f"in.{out_ext}", codec="libvpx-vp9" if out_ext == "webm" else "libx264", start=start
    )
    span = video_span(video)
    out = mux(video, (click_track(sr, audio_s), sr), tmp_path / f"out.{out_ext}", audio_codec=audio_codec)
    t0, samples, rate, name = decode_audio(out)
    assert name == CODEC_NAME[audio_codec]
    frame_s = FRAME_SAMPLES[audio_codec] / rate + 1e-3  # one coded frame (+ container rounding)
    assert abs(t0 - float(span.start)) <= frame_s
    assert abs(t0 + len(samples) / rate - float(span.end)) <= frame_s
    # The content is in sync: the click at 0.3 s plays 0.3 s after the first video frame.
    assert t0 + onset(samples, rate) - float(span.start) == pytest.approx(0.3, abs=0.002)
    if audio_s < 1.2:  # padded with silence after the end of the given audio
        tail = samples[round((float(span.start) - t0 + audio_s + 0.05) * rate) :]
        assert np.max(np.abs(tail)) < 0.01


@pytest.mark.parametrize(
    ("audio_codec", "out_ext"), [("aac", "mp4"), ("opus", "mkv"), ("flac", "mkv"), ("pcm", "mkv")]
)
def test_codecs_keep_the_signal(tmp_path: Path, audio_codec: str, out_ext: str) -> None:
    sr = 48_000
    t = np.arange(round(1.2 * sr)) / sr
    wav = (0.4 * np.sin(2 * np.pi * 500 * t) * np.sin(2 * np.pi * 1.5 * t)).astype(np.float32)
    out = mux(
        make_video(tmp_path / "in.mkv"), (wav, sr), tmp_path / f"out.{out_ext}", audio_codec=audio_codec
    )
    t0, samples, rate, _ = decode_audio(out)
    assert rate == sr
    lag = round(t0 * rate)  # negative when a codec shows some priming before zero
    got = samples[-lag:][: len(wav)] if lag < 0 else np.concatenate([np.zeros(lag), samples])[: len(wav)]
    corr = float(np.dot(got, wav) / (np.linalg.norm(got) * np.linalg.norm(wav)))
    if audio_codec in ("flac", "pcm"):
        assert np.max(np.abs(got - wav)) < 1e-4  # 16-bit, lossless from there
    else:
        assert corr > 0.99


def test_sample_rate_bitrate_and_channels(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4")
    stereo = np.stack([click_track(22_050, 1.2), click_track(22_050, 1.2, at=0.5)])
    low = mux(video, (stereo, 22_050), tmp_path / "low.mp4", bitrate=48_000, sample_rate=32_000)
    high = mux(video, (stereo, 22_050), tmp_path / "high.mp4", bitrate=256_000, sample_rate=32_000)
    with av.open(str(low)) as a, av.open(str(high)) as b:
        assert a.streams.audio[0].rate == 32_000
        assert a.streams.audio[0].channels == 2
        assert a.streams.audio[0].bit_rate < b.streams.audio[0].bit_rate
    opus = mux(video, (stereo[0], 44_100), tmp_path / "o.mkv", audio_codec="opus")  # Opus has no 44.1k mode
    assert decode_audio(opus)[2] == 48_000


def test_audio_from_files_and_several_tracks(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mkv")
    path = save_audio(tmp_path / "a.flac", click_track(16_000, 2.0, at=0.4), 16_000)
    out = mux(
        video, [path, (click_track(24_000, 1.0, at=0.8), 24_000)], tmp_path / "out.mkv", audio_codec="flac"
    )
    with av.open(str(out)) as container:
        streams = container.streams.audio
        assert len(streams) == 2
        assert [s.rate for s in streams] == [16_000, 24_000]
        assert streams[0].disposition & av.stream.Disposition.default
        assert not streams[1].disposition & av.stream.Disposition.default
    assert onset(decode_audio(out, 0)[1], 16_000) == pytest.approx(0.4, abs=0.002)
    assert onset(decode_audio(out, 1)[1], 24_000) == pytest.approx(0.8, abs=0.002)


# ---------------------------------------------------------------- original audio and tags


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_keep_original_audio_copies_its_packets(tmp_path: Path, ext: str) -> None:
    original = click_track(48_000, 1.2, at=0.9)
    video = make_video(tmp_path / f"in.{ext}", audio=original, sample_rate=48_000)
    out = mux(video, (click_track(24_000, 1.2), 24_000), tmp_path / f"out.{ext}", keep_original_audio=True)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 2
    assert packets(out, "audio", 1) == packets(video, "audio", 0)
    assert onset(decode_audio(out, 0)[1], 24_000) == pytest.approx(0.3, abs=0.002)
    plain = mux(video, (click_track(24_000, 1.2), 24_000), tmp_path / f"plain.{ext}")
    with av.open(str(plain)) as container:
        assert len(container.streams.audio) == 1  # the original is dropped unless asked for


@pytest.mark.parametrize("ext", ["mp4", "mkv", "mov", "webm"])
def test_metadata_tags_survive(tmp_path: Path, ext: str) -> None:
    video = make_video(tmp_path / f"in.{ext}", codec="libvpx-vp9" if ext == "webm" else "libx264")
    tags = {"generator": "foley", "v2a_version": "0.1.0", "model_id": "tiny-7f3a", "watermark_key_id": "k1"}
    first = mux(
        video,
        (click_track(24_000, 1.0), 24_000),
        tmp_path / f"first.{ext}",
        metadata=tags,
        audio_metadata={"title": "Foley track"},
    )
    # Re-muxing keeps the tags already there and adds the new ones.
    second = mux(
        first, (click_track(24_000, 1.0), 24_000), tmp_path / f"second.{ext}", metadata={"seed": "7"}
    )
    with av.open(str(second)) as container:
        got = {k.lower(): v for k, v in container.metadata.items()}
    with av.open(str(first)) as container:
        track = {k.lower(): v for k, v in container.streams.audio[0].metadata.items()}
    assert got | tags == got  # every tag is there with its value
    assert got["seed"] == "7"
    assert track.get("title", track.get("handler_name")) == "Foley track"  # MP4 keeps it as the handler name


# ---------------------------------------------------------------- safety and errors


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4")
    track = (click_track(24_000, 1.0), 24_000)
    with pytest.raises(OutputError, match="input"):
        mux(video, track, video, overwrite=True)
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        mux(video, track, existing)
    assert existing.read_bytes() == b"keep me"
    mux(video, track, existing, overwrite=True)
    assert packets(existing)[0] == packets(video)[0]


def test_failed_mux_leaves_no_partial_file(tmp_path: Path) -> None:
    video = make_video(
        tmp_path / "in.webm", codec="libvpx-vp9", audio=click_track(48_000, 1.2), sample_rate=48_000
    )
    existing = tmp_path / "out.mov"
    existing.write_bytes(b"older result")
    before = sorted(p.name for p in tmp_path.iterdir())
    # The original Opus track cannot go into MOV: found once the output file is being written.
    with pytest.raises(InputError, match="original opus"):
        mux(video, (click_track(24_000, 1.0), 24_000), existing, keep_original_audio=True, overwrite=True)
    assert existing.read_bytes() == b"older result"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_inputs(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4")
    track = (click_track(24_000, 1.0), 24_000)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01 not a video " * 100)
    (tmp_path / "cut.mp4").write_bytes(video.read_bytes()[: video.stat().st_size // 2])  # index (moov) lost
    sound = save_audio(tmp_path / "sound.wav", click_track(24_000, 1.0), 24_000)
    bad_videos = {
        tmp_path / "missing.mp4": "does not exist",
        tmp_path: "directory",
        tmp_path / "empty.mp4": "empty",
        tmp_path / "junk.mp4": "cannot read video",
        tmp_path / "cut.mp4": "cannot read video",
        sound: "no video stream",
    }
    for bad, words in bad_videos.items():
        with pytest.raises(InputError, match=words):
            mux(bad, track, tmp_path / "o.mp4")
    bad_calls = [
        ({"audio": tmp_path / "missing.wav"}, "does not exist"),
        ({"audio": tmp_path / "junk.mp4"}, "cannot read audio"),
        ({"audio": video}, "no audio stream"),
        ({"out": tmp_path / "o.avi"}, "extension"),
        ({"audio_codec": "pcm"}, r"\.mkv or \.mov"),
        ({"audio_codec": "mp3"}, "unknown audio codec"),
        ({"audio_codec": "flac", "bitrate": 128_000}, "bitrate"),
        ({"audio_codec": "flac", "out": tmp_path / "o.webm"}, "opus"),
    ]
    for changes, words in bad_calls:
        kwargs = {"audio": track, "out": tmp_path / "o.mp4"} | changes
        with pytest.raises(InputError, match=words):
            mux(video, **kwargs)
    assert not (tmp_path / "o.mp4").exists()
    with pytest.raises(InputError, match="h264 video cannot be copied"):
        mux(video, track, tmp_path / "o.webm")
