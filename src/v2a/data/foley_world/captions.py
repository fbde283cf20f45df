"""Captions written from the scene graph, in the style of automatic sound annotations.

Only what is heard is described: sound-making entities in the order their first sound starts, visible
ambience as "while ...", off-screen sources as such, and cuts as "then". Silent distractors are left out:
a caption is a description of the audio, and a prompt for it.
"""

from __future__ import annotations

from v2a.data.foley_world.entities import AMBIENCE_KINDS
from v2a.data.foley_world.scene import Scene, Shot


def shot_caption(shot: Shot) -> str:
    """One shot's sentence, e.g. "a metal can falls and bounces twice on the wooden floor while rain falls"."""
    heard = [e for e in shot.entities if e.cues]
    events = sorted(
        (e for e in heard if e.kind not in AMBIENCE_KINDS and e.kind != "offscreen"),
        key=lambda e: e.cues[0].t,
    )
    beds = [e.phrase for e in heard if e.kind in AMBIENCE_KINDS]
    offscreen = [e.phrase for e in heard if e.kind == "offscreen"]
    text = ", then ".join(e.phrase for e in events[:2])
    if len(events) > 2:
        text += ", and " + " and ".join(e.phrase for e in events[2:])
    if beds:
        text = f"{text} while {' and '.join(beds)}" if text else " and ".join(beds)
    if offscreen:
        text = f"{text}; {' and '.join(offscreen)}" if text else " and ".join(offscreen)
    return text or "near silence"


def caption(scene: Scene) -> str:
    """The clip's caption: its shots' sentences joined with "; then the scene cuts to: "."""
    return "; then the scene cuts to: ".join(shot_caption(s) for s in scene.shots)


def transcript(scene: Scene) -> str:
    """Everything said in the clip, in order ("" when nobody speaks)."""
    said = sorted(
        (e.cues[0].t, e.transcript) for s in scene.shots for e in s.entities if e.transcript and e.cues
    )
    return " ".join(text for _, text in said)
