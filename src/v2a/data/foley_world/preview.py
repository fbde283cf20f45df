"""A contact sheet of a Foley-world build: a row of frames per clip with its caption, for a quick look."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from v2a.errors import InputError
from v2a.io.atomic import atomic_output


def contact_sheet(
    manifest: str | Path, out_png: str | Path, *, clips: int = 8, frames: int = 5, width: int = 192
) -> Path:
    """Save a PNG showing ``frames`` evenly spaced frames of the first ``clips`` clips of a manifest.

    Args:
        manifest: a Foley-world ``manifest.jsonl``.
        out_png: where to write the sheet.
        clips: rows (clips) to show.
        frames: frames per row.
        width: width of each thumbnail in pixels.

    Returns:
        The written path.
    """
    path = Path(manifest)
    if not path.is_file():
        raise InputError(f"manifest {path} does not exist")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:clips]
    strips = []
    for row in rows:
        with av.open(str(path.parent / row["video"])) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        picks = np.linspace(0, len(decoded) - 1, frames + 2)[1:-1].round().astype(int)
        thumbs = [
            Image.fromarray(decoded[i]).resize(
                (width, round(width * decoded[i].shape[0] / decoded[i].shape[1]))
            )
            for i in picks
        ]
        height = max(t.height for t in thumbs)
        strip = Image.new("RGB", (frames * (width + 4), height + 14), "white")
        for k, thumb in enumerate(thumbs):
            strip.paste(thumb, (k * (width + 4), 0))
        ImageDraw.Draw(strip).text(
            (2, height + 1), f"{row['id']}: {row['caption']}"[: frames * width // 5], fill="black"
        )
        strips.append(strip)
    sheet = Image.new("RGB", (frames * (width + 4), sum(s.height for s in strips) or 1), "white")
    y = 0
    for strip in strips:
        sheet.paste(strip, (0, y))
        y += strip.height
    out = Path(out_png)
    with atomic_output(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
