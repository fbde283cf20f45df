"""Parts of Foley world: physics, Doppler, sprites and blitting, backdrop pictures, captions."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image

from v2a.data.foley_world import physics
from v2a.data.foley_world.backgrounds import BackgroundLibrary, license_of, read_gimp_pattern
from v2a.data.foley_world.render import blit
from v2a.data.foley_world.sprites import ball, to_sprite
from v2a.errors import InputError


def test_drop_contacts_follow_free_fall_and_restitution():
    times = np.arange(0, 4, 1 / 25)
    ppm = 100.0
    motion = physics.drop(
        times, t0=0.5, x0=50, height_px=200, floor_y=300, radius_px=10, ppm=ppm, restitution=0.5
    )
    first = motion.contacts[0]
    assert first.t == pytest.approx(0.5 + np.sqrt(2 * 2.0 / physics.GRAVITY))
    assert first.speed == pytest.approx(np.sqrt(2 * physics.GRAVITY * 2.0))
    gaps = np.diff([c.t for c in motion.contacts])
    assert np.allclose(gaps[1:] / gaps[:-1], 0.5, atol=1e-6)  # flight time scales with the bounce speed
    assert np.nanmax(motion.y) <= 300 - 10 + 1e-9  # never below the floor
    resting = times > motion.contacts[-1].t + 0.1
    assert np.allclose(motion.y[resting], 290)


def test_doppler_raises_pitch_while_approaching_and_lowers_it_after():
    t = np.linspace(0, 4, 4000)
    t_emit, dist = physics.doppler_times(t, t0=2.0, x0_m=0.0, speed_m=20.0, depth_m=5.0)
    rate = np.gradient(t_emit, t)  # playback rate of the source = frequency ratio
    assert rate[200] == pytest.approx(1 / (1 - 20 / physics.SPEED_OF_SOUND), rel=0.01)
    assert rate[-200] == pytest.approx(1 / (1 + 20 / physics.SPEED_OF_SOUND), rel=0.01)
    assert dist.min() == pytest.approx(5.0, rel=0.01)


def test_walk_strikes_are_evenly_spaced():
    times = np.arange(0, 5, 1 / 30)
    gait = physics.walk(times, t0=1.0, t1=4.0, x0=0.0, speed_px=40.0, step_s=0.5, bob_px=2.0)
    strikes = np.array([t for t, _ in gait.strikes])
    assert np.allclose(np.diff(strikes), 0.5) and strikes[0] == 1.0 and strikes[-1] <= 4.0
    assert gait.x[-1] == pytest.approx(40.0 * (strikes[-1] - 1.0))


def test_blit_blends_only_inside_the_sprite_and_clips_at_edges():
    canvas = np.zeros((20, 30, 3), np.float32)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 255
    sprite = to_sprite(Image.fromarray(rgba))
    blit(canvas, sprite, 10, 10)
    assert canvas[8:12, 8:12, 0].min() == 255 and canvas.sum() == 255 * 16
    blit(canvas, sprite, -1, -1)  # mostly outside: only the overlap is drawn
    assert canvas[0, 0, 0] == 255
    blit(canvas, sprite, 100, 100)  # fully outside: nothing happens
    round_ball = ball(8, (0, 200, 0), np.random.default_rng(0))
    assert round_ball.alpha[0, 0, 0] < 0.05 and round_ball.alpha[8, 8, 0] > 0.95


def test_gimp_pattern_decoding():
    name = b"test\x00"
    header = struct.pack(">5I", 24 + len(name), 1, 3, 2, 3) + b"GPAT" + name
    pixels = bytes(range(18))
    image = read_gimp_pattern(header + pixels)
    assert image.size == (3, 2) and np.asarray(image)[1, 2].tolist() == [15, 16, 17]
    with pytest.raises(InputError, match="GPAT"):
        read_gimp_pattern(b"\x00" * 40)


def test_license_of_uses_the_last_matching_files_paragraph():
    text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: x\nLicense: GPL-2+\n\n"
        "Files: 20.04/Sea.jpg\n 20.04/Hill.jpg\nCopyright: y\nLicense: CC-BY-SA-3.0\n\n"
        "Files: debian/*\nCopyright: z\nLicense: Expat\n"
    )
    assert license_of(text, "usr/share/backgrounds/Hill.jpg") == "CC-BY-SA-3.0"
    assert license_of(text, "usr/share/backgrounds/Other.jpg") == "GPL-2+"


def test_background_library_keeps_test_photos_out_of_train(tmp_path):
    rows = [
        {"path": "images/a.jpg", "kind": "photo", "material": "outdoor", "split": "train"},
        {"path": "images/b.jpg", "kind": "photo", "material": "outdoor", "split": "test"},
        {"path": "images/w.jpg", "kind": "texture", "material": "wood", "split": "any"},
    ]
    (tmp_path / "backgrounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    library = BackgroundLibrary(tmp_path)
    rng = np.random.default_rng(0)
    assert {library.choose(rng, kind="photo", split="train").path.name for _ in range(20)} == {"a.jpg"}
    assert {library.choose(rng, kind="photo", split="test").path.name for _ in range(20)} == {"b.jpg"}
    assert library.choose(rng, kind="texture", split="test", material="wood").path.name == "w.jpg"
    assert library.choose(rng, kind="texture", split="test", material="metal") is None
    with pytest.raises(InputError, match="does not exist"):
        BackgroundLibrary(tmp_path / "missing")
