"""Dialogue: speech for a transcript, timed to the visible mouths, mixed over the Foley track.

``dialogue_track(video, transcript, start_s=..., duration_s=...)`` gives the speech of a window (lines
parsed by ``planner``, timed to SRT/VTT cues or to the mouth movement ``mouth`` sees, spoken by ``tts``
at a rate fitted to their slot); ``mix_dialogue(foley, speech, sample_rate)`` lays it over the generated
Foley, ducking the Foley under the speech.
"""

from v2a.dialogue.mixer import duck_gain, mix_dialogue
from v2a.dialogue.mouth import MouthActivity, mouth_from_frames, video_mouth
from v2a.dialogue.planner import Line, Placement, parse_transcript, plan_lines
from v2a.dialogue.track import DialoguePlan, dialogue_track, plan_dialogue
from v2a.dialogue.tts import Speech, fit_speech, synthesize

__all__ = [
    "DialoguePlan",
    "Line",
    "MouthActivity",
    "Placement",
    "Speech",
    "dialogue_track",
    "duck_gain",
    "fit_speech",
    "mix_dialogue",
    "mouth_from_frames",
    "parse_transcript",
    "plan_dialogue",
    "plan_lines",
    "synthesize",
    "video_mouth",
]
