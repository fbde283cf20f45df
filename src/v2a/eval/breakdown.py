"""The class metric per category: which on-screen sources a system's tracks are heard as, and which not.

``class_acc_coarse`` says how often a track's top category is one of its clip's; it does not say which
sources a system renders and which it misses (a generator that makes every clip's loudest source scores
like one that makes its commonest). This breaks it down by the coarse categories of the clips' labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from v2a.eval.classifier import category
from v2a.eval.results import ClipResult

__all__ = ["category_breakdown"]


def category_breakdown(clips: Sequence[ClipResult]) -> dict[str, dict[str, float]]:
    """Per coarse category, how often it is on a clip's label list and how often tracks are heard as it.

    Only tracks with a ``top_category`` (scored with the ``class`` group) count; a silent track's is None,
    so it counts as heard as nothing.

    Args:
        clips: scored clips (``ClipResult.targets`` and each generation's ``top_category``).

    Returns:
        category -> ``clips`` (clips whose labels include it), ``target_share`` (their fraction of the
        clips), ``recall`` (fraction of those clips' tracks whose top category is it; absent when no clip
        has it) and ``heard_share`` (fraction of all tracks whose top category is it), ordered by
        ``clips`` then ``heard_share``; empty when no track was classified.
    """
    scored = [(c, [g["top_category"] for g in c.generations if "top_category" in g]) for c in clips]
    scored = [(c, tops) for c, tops in scored if tops]
    if not scored:
        return {}
    targeted: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    tracks_of: Counter[str] = Counter()
    heard: Counter[str] = Counter()
    for clip, tops in scored:
        heard.update(t for t in tops if t is not None)
        for cat in {category(label) for label in clip.targets}:
            targeted[cat] += 1
            tracks_of[cat] += len(tops)
            hits[cat] += sum(t == cat for t in tops)
    n_clips, n_tracks = len(scored), sum(len(tops) for _, tops in scored)
    rows: dict[str, dict[str, float]] = {}
    for cat in set(targeted) | set(heard):
        row = {"clips": float(targeted[cat]), "target_share": targeted[cat] / n_clips}
        if targeted[cat]:
            row["recall"] = hits[cat] / tracks_of[cat]
        row["heard_share"] = heard[cat] / n_tracks
        rows[cat] = row
    order = sorted(rows, key=lambda c: (-rows[c]["clips"], -rows[c]["heard_share"], c))
    return {cat: rows[cat] for cat in order}
