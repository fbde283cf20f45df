"""Sprites: RGBA images of the things in a scene, made once per clip and blitted every frame.

Real pictures come first: corpus stamp photographs (with their own recordings) and package textures (wood,
stone, ...) fill the drawn shapes, so a crate is made of a real wood photo. Shapes are drawn with PIL at 3x
and downsampled, which anti-aliases edges. A ``Sprite`` stores premultiplied float colour and alpha so a
blit is one multiply-add over the sprite's bounding box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SS = 3  # supersampling factor for drawing


@dataclass(frozen=True)
class Sprite:
    """A ready-to-blit image.

    Attributes:
        rgb: (h, w, 3) float32 colour premultiplied by alpha, 0..255.
        alpha: (h, w, 1) float32 coverage 0..1.
        anchor: (ax, ay) pixel offset inside the sprite of the point placed at an entity's (x, y).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    anchor: tuple[float, float]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]


def to_sprite(image: Image.Image, anchor: tuple[float, float] = (0.5, 0.5)) -> Sprite:
    """Turn an RGBA PIL image into a Sprite; ``anchor`` is relative (0..1) to the image size."""
    arr = np.asarray(image.convert("RGBA"), dtype=np.float32)
    alpha = arr[..., 3:4] / 255.0
    return Sprite(arr[..., :3] * alpha, alpha, (anchor[0] * image.width, anchor[1] * image.height))


def flip(sprite: Sprite) -> Sprite:
    """Mirror left-right (the anchor mirrors too)."""
    w = sprite.rgb.shape[1]
    return Sprite(
        sprite.rgb[:, ::-1].copy(), sprite.alpha[:, ::-1].copy(), (w - sprite.anchor[0], sprite.anchor[1])
    )


def _canvas(w: float, h: float) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGBA", (max(1, round(w * SS)), max(1, round(h * SS))), (0, 0, 0, 0))
    return image, ImageDraw.Draw(image)


def _finish(image: Image.Image, w: float, h: float, anchor=(0.5, 0.5)) -> Sprite:
    return to_sprite(image.resize((max(1, round(w)), max(1, round(h))), Image.Resampling.LANCZOS), anchor)


def _shade(colour, factor: float) -> tuple[int, int, int, int]:
    return (*(int(np.clip(c * factor, 0, 255)) for c in colour[:3]), 255)


def texture_fill(
    texture: np.ndarray | None, w: int, h: int, rng: np.random.Generator, fallback
) -> Image.Image:
    """A (w, h) RGBA patch cut from a texture picture (tiled if small), or a flat colour."""
    if texture is None:
        return Image.new("RGBA", (w, h), _shade(fallback, 1.0))
    th, tw = texture.shape[:2]
    reps = (math.ceil(h / th) + 1, math.ceil(w / tw) + 1, 1)
    tiled = np.tile(texture, reps) if (th < h or tw < w) else texture
    y0 = int(rng.integers(0, max(1, tiled.shape[0] - h)))
    x0 = int(rng.integers(0, max(1, tiled.shape[1] - w)))
    return Image.fromarray(np.ascontiguousarray(tiled[y0 : y0 + h, x0 : x0 + w])).convert("RGBA")


def _masked(fill: Image.Image, mask: Image.Image) -> Image.Image:
    out = fill.copy()
    out.putalpha(mask)
    return out


def crate(size: float, texture: np.ndarray | None, rng: np.random.Generator) -> Sprite:
    """A wooden box made of a wood texture, with darker edges and a plank seam."""
    s = round(size * SS)
    img = texture_fill(texture, s, s, rng, (150, 105, 60))
    d = ImageDraw.Draw(img)
    edge = max(2, s // 9)
    d.rectangle([0, 0, s - 1, s - 1], outline=(60, 40, 20, 255), width=edge)
    d.line([edge, s // 2, s - edge, s // 2], fill=(70, 45, 25, 255), width=max(1, edge // 2))
    d.line([edge, edge, s - edge, s - edge], fill=(90, 60, 30, 255), width=max(1, edge // 2))
    return _finish(img, size, size)


def ball(radius: float, colour, rng: np.random.Generator, texture: np.ndarray | None = None) -> Sprite:
    """A shaded sphere (flat colour or a texture), lit from the upper left."""
    d2 = round(2 * radius * SS)
    fill = texture_fill(texture, d2, d2, rng, colour)
    yy, xx = np.mgrid[0:d2, 0:d2].astype(np.float32) / d2 - 0.5
    light = np.clip(1.25 - 1.3 * np.hypot(xx + 0.18, yy + 0.18), 0.35, 1.3)
    arr = np.asarray(fill, dtype=np.float32)
    arr[..., :3] = np.clip(arr[..., :3] * light[..., None], 0, 255)
    mask = Image.new("L", (d2, d2), 0)
    ImageDraw.Draw(mask).ellipse([0, 0, d2 - 1, d2 - 1], fill=255)
    return _finish(_masked(Image.fromarray(arr.astype(np.uint8)), mask), 2 * radius, 2 * radius)


def can(width: float, height: float, colour, rng: np.random.Generator) -> Sprite:
    """A metal can: a cylinder with a horizontal shading ramp, rims and a coloured label band."""
    w, h = round(width * SS), round(height * SS)
    xx = np.linspace(-1, 1, w)
    metal = np.clip(170 + 70 * np.cos(xx * 1.4 + 0.5) - 40 * xx**2, 60, 250)
    arr = np.repeat(np.repeat(metal[None, :, None], h, 0), 3, 2)
    band = slice(int(h * 0.25), int(h * 0.75))
    arr[band] = np.clip(
        np.array(colour[:3])[None, None, :] * (0.6 + 0.5 * np.cos(xx * 1.4 + 0.5))[None, :, None], 0, 255
    )
    img = Image.fromarray(arr.astype(np.uint8)).convert("RGBA")
    d = ImageDraw.Draw(img)
    rim = max(2, h // 14)
    d.rectangle([0, 0, w - 1, rim], fill=(120, 120, 125, 255))
    d.rectangle([0, h - rim - 1, w - 1, h - 1], fill=(110, 110, 115, 255))
    return _finish(img, width, height)


def bottle(width: float, height: float, colour, rng: np.random.Generator) -> Sprite:
    """A translucent glass bottle with a highlight."""
    img, d = _canvas(width, height)
    w, h = img.size
    body = (*colour[:3], 170)
    d.rounded_rectangle([0, int(h * 0.35), w - 1, h - 1], radius=w // 4, fill=body)
    d.polygon(
        [(w * 0.15, h * 0.38), (w * 0.35, h * 0.12), (w * 0.65, h * 0.12), (w * 0.85, h * 0.38)], fill=body
    )
    d.rectangle([w * 0.35, 0, w * 0.65, h * 0.14], fill=_shade(colour, 0.7))
    d.rectangle([w * 0.18, h * 0.42, w * 0.3, h * 0.9], fill=(255, 255, 255, 120))
    return _finish(img, width, height)


def rock(size: float, texture: np.ndarray | None, rng: np.random.Generator) -> Sprite:
    """An irregular stone cut from a stone texture, darker towards its lower edge."""
    s = round(size * SS)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radii = rng.uniform(0.38, 0.5, 9) * s
    pts = [(s / 2 + r * np.cos(a), s / 2 + r * 0.8 * np.sin(a)) for r, a in zip(radii, angles, strict=True)]
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).polygon(pts, fill=255)
    fill = texture_fill(texture, s, s, rng, (130, 128, 120))
    arr = np.asarray(fill, dtype=np.float32)
    arr[..., :3] *= np.linspace(1.15, 0.6, s)[:, None, None]
    return _finish(_masked(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), mask), size, size)


def shard(size: float, colour, rng: np.random.Generator) -> Sprite:
    """A small glass fragment."""
    img, d = _canvas(size, size)
    s = img.size[0]
    pts = [(rng.uniform(0, s), rng.uniform(0, s)) for _ in range(3)]
    d.polygon(pts, fill=(*colour[:3], 200))
    return _finish(img, size, size)


def person(height: float, palette: dict, phase: float, *, facing: int = 1) -> Sprite:
    """A walking person in side view; ``phase`` (cycles) sets the leg and arm swing. Anchor: feet."""
    w = height * 0.6
    img, d = _canvas(w, height)
    W, H = img.size
    hip = (W / 2, H * 0.55)
    leg = H * 0.45
    swing = 0.45 * math.sin(2 * math.pi * phase)
    lw = max(3, int(W * 0.13))
    for sgn, shade in ((1, 0.75), (-1, 1.0)):
        a = sgn * swing
        knee = (hip[0] + leg * 0.5 * math.sin(a), hip[1] + leg * 0.5 * math.cos(a))
        foot = (knee[0] + leg * 0.5 * math.sin(a - 0.3 * abs(a)), knee[1] + leg * 0.5 * math.cos(a))
        col = _shade(palette["trousers"], shade)
        d.line([hip, knee, foot], fill=col, width=lw, joint="curve")
        d.line([foot, (foot[0] + facing * W * 0.1, foot[1])], fill=_shade((30, 30, 30), 1), width=lw)
    shoulder = (W / 2, H * 0.24)
    for sgn, shade in ((-1, 0.75), (1, 1.0)):
        a = sgn * swing * 0.8
        hand = (shoulder[0] + H * 0.28 * math.sin(a), shoulder[1] + H * 0.28 * math.cos(a))
        if shade < 1:
            d.line([shoulder, hand], fill=_shade(palette["shirt"], shade), width=lw)
    d.rounded_rectangle(
        [W / 2 - W * 0.16, H * 0.2, W / 2 + W * 0.16, H * 0.58],
        radius=W * 0.08,
        fill=_shade(palette["shirt"], 1),
    )
    a = swing * 0.8
    d.line([shoulder, (shoulder[0] + H * 0.28 * math.sin(a), shoulder[1] + H * 0.28 * math.cos(a))],
           fill=_shade(palette["shirt"], 1.1), width=lw)  # fmt: skip
    r = H * 0.09
    d.ellipse([W / 2 - r, H * 0.02, W / 2 + r, H * 0.02 + 2 * r], fill=_shade(palette["skin"], 1))
    d.chord([W / 2 - r, H * 0.02, W / 2 + r, H * 0.02 + 2 * r], 180, 360, fill=_shade(palette["hair"], 1))
    sprite = _finish(img, w, height, (0.5, 1.0))
    return sprite if facing > 0 else flip(sprite)


def face(size: float, palette: dict, mouth_open: float) -> Sprite:
    """Head and shoulders seen from the front; the mouth opens with ``mouth_open`` in 0..1. Anchor: centre."""
    img, d = _canvas(size, size * 1.25)
    W, H = img.size
    d.rounded_rectangle(
        [W * 0.1, H * 0.72, W * 0.9, H * 1.2], radius=W * 0.2, fill=_shade(palette["shirt"], 1)
    )
    d.rectangle([W * 0.42, H * 0.6, W * 0.58, H * 0.76], fill=_shade(palette["skin"], 0.9))
    d.ellipse([W * 0.2, H * 0.08, W * 0.8, H * 0.68], fill=_shade(palette["skin"], 1))
    d.chord([W * 0.18, H * 0.04, W * 0.82, H * 0.5], 180, 360, fill=_shade(palette["hair"], 1))
    for ex in (0.38, 0.62):
        d.ellipse([W * (ex - 0.05), H * 0.33, W * (ex + 0.05), H * 0.39], fill=(250, 250, 250, 255))
        d.ellipse([W * (ex - 0.025), H * 0.34, W * (ex + 0.025), H * 0.385], fill=(40, 30, 20, 255))
    d.line(
        [W * 0.5, H * 0.38, W * 0.47, H * 0.47, W * 0.52, H * 0.47],
        fill=_shade(palette["skin"], 0.7),
        width=SS,
    )
    m = float(np.clip(mouth_open, 0, 1))
    mh = H * (0.012 + 0.09 * m)
    d.ellipse(
        [W * (0.41 - 0.03 * m), H * 0.545 - mh / 2, W * (0.59 + 0.03 * m), H * 0.545 + mh / 2],
        fill=(90, 25, 30, 255),
    )
    if m > 0.3:
        d.rectangle(
            [W * 0.44, H * 0.545 - mh / 2, W * 0.56, H * 0.545 - mh / 2 + H * 0.012],
            fill=(245, 245, 240, 255),
        )
    return _finish(img, size, size * 1.25)


def car(width: float, colour, wheel_angle: float, *, facing: int = 1) -> Sprite:
    """A side view car with turning wheels. Anchor: bottom centre (where the wheels touch the road)."""
    height = width * 0.42
    img, d = _canvas(width, height)
    W, H = img.size
    body = _shade(colour, 1)
    d.rounded_rectangle([0, H * 0.38, W - 1, H * 0.82], radius=H * 0.12, fill=body)
    d.polygon([(W * 0.2, H * 0.4), (W * 0.32, H * 0.06), (W * 0.7, H * 0.06), (W * 0.84, H * 0.4)], fill=body)
    glass = (170, 200, 225, 255)
    d.polygon(
        [(W * 0.25, H * 0.38), (W * 0.35, H * 0.12), (W * 0.5, H * 0.12), (W * 0.5, H * 0.38)], fill=glass
    )
    d.polygon(
        [(W * 0.53, H * 0.38), (W * 0.53, H * 0.12), (W * 0.68, H * 0.12), (W * 0.8, H * 0.38)], fill=glass
    )
    d.rectangle([W * 0.95, H * 0.45, W, H * 0.55], fill=(255, 240, 180, 255))
    d.rectangle([0, H * 0.45, W * 0.03, H * 0.55], fill=(200, 30, 30, 255))
    r = H * 0.2
    for cx in (W * 0.22, W * 0.78):
        cy = H - r - 1
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(25, 25, 25, 255))
        d.ellipse([cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55], fill=(170, 170, 175, 255))
        for k in range(3):
            a = wheel_angle + k * 2 * math.pi / 3
            d.line(
                [cx, cy, cx + r * 0.5 * math.cos(a), cy + r * 0.5 * math.sin(a)],
                fill=(80, 80, 85, 255),
                width=SS,
            )
    sprite = _finish(img, width, height, (0.5, 1.0))
    return sprite if facing > 0 else flip(sprite)


def door(
    width: float, height: float, texture: np.ndarray | None, open_frac: float, rng: np.random.Generator
) -> Sprite:
    """A door in its frame, hinged on the left, swung open by ``open_frac`` (0 shut .. 1 wide open).

    The panel is foreshortened (width * cos(angle)) and darkened as it turns; the doorway behind is dark.
    Anchor: bottom centre.
    """
    img, d = _canvas(width, height)
    W, H = img.size
    frame = max(2, int(W * 0.08))
    d.rectangle([0, 0, W - 1, H - 1], fill=(70, 55, 45, 255))
    d.rectangle([frame, frame, W - frame, H - 1], fill=(18, 16, 20, 255))
    angle = open_frac * math.pi * 0.45
    pw = max(1, int((W - 2 * frame) * math.cos(angle)))
    local = np.random.default_rng(int(rng.integers(1 << 30)))  # same panel texture for every open state
    panel = texture_fill(texture, W - 2 * frame, H - frame, local, (140, 90, 50)).resize((pw, H - frame))
    arr = np.asarray(panel, dtype=np.float32)
    arr[..., :3] *= 1.0 - 0.45 * open_frac
    panel = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    pd = ImageDraw.Draw(panel)
    pd.rectangle([0, 0, pw - 1, H - frame - 1], outline=(50, 35, 25, 255), width=max(1, SS))
    knob_x = pw * 0.85
    pd.ellipse(
        [knob_x - 2 * SS, H * 0.5 - 2 * SS, knob_x + 2 * SS, H * 0.5 + 2 * SS], fill=(200, 180, 90, 255)
    )
    img.paste(panel, (frame, frame))
    return _finish(img, width, height, (0.5, 1.0))


def flame(size: float, phase: int, rng: np.random.Generator) -> Sprite:
    """A campfire: logs and flickering flame tongues (one look per ``phase``). Anchor: bottom centre."""
    img, d = _canvas(size, size * 1.2)
    W, H = img.size
    local = np.random.default_rng(phase * 7919 + int(rng.integers(1 << 20)))
    for k, colour in enumerate(((230, 60, 20), (250, 140, 30), (255, 220, 90))):
        scale = 1.0 - 0.28 * k
        for _ in range(4):
            cx = W / 2 + local.normal(0, W * 0.12 * scale)
            top = H * (0.1 + 0.35 * (1 - scale)) + local.uniform(0, H * 0.15)
            half = W * 0.16 * scale
            d.polygon([(cx - half, H * 0.85), (cx + local.normal(0, W * 0.05), top), (cx + half, H * 0.85)],
                      fill=(*colour, 230))  # fmt: skip
    img = img.filter(ImageFilter.GaussianBlur(SS))
    d = ImageDraw.Draw(img)
    d.line([W * 0.15, H * 0.95, W * 0.85, H * 0.82], fill=(90, 55, 30, 255), width=int(H * 0.08))
    d.line([W * 0.15, H * 0.82, W * 0.85, H * 0.95], fill=(75, 45, 25, 255), width=int(H * 0.08))
    return _finish(img, size, size * 1.2, (0.5, 1.0))


def cloud(width: float, rng: np.random.Generator) -> Sprite:
    """A soft white cloud of overlapping blobs."""
    img, d = _canvas(width, width * 0.5)
    W, H = img.size
    for _ in range(7):
        cx, cy, r = rng.uniform(0.25, 0.75) * W, rng.uniform(0.45, 0.65) * H, rng.uniform(0.15, 0.3) * W
        d.ellipse([cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], fill=(250, 250, 252, 215))
    return _finish(img.filter(ImageFilter.GaussianBlur(2 * SS)), width, width * 0.5)


def balloon(radius: float, colour) -> Sprite:
    """A floating balloon on a string. Anchor: centre of the balloon."""
    img, d = _canvas(radius * 2, radius * 5)
    W, H = img.size
    d.line([W / 2, W * 1.15, W / 2 + W * 0.1, H], fill=(90, 90, 90, 255), width=SS)
    d.ellipse([0, 0, W - 1, W * 1.15], fill=_shade(colour, 1))
    d.ellipse([W * 0.2, W * 0.15, W * 0.4, W * 0.4], fill=(255, 255, 255, 130))
    return _finish(img, radius * 2, radius * 5, (0.5, 0.23))


def bird(width: float, wing: float) -> Sprite:
    """A gliding bird silhouette; ``wing`` in -1..1 sets the wing angle."""
    img, d = _canvas(width, width * 0.6)
    W, H = img.size
    cy = H / 2
    tip = cy - wing * H * 0.45
    d.line([(0, tip), (W * 0.3, cy - wing * H * 0.1), (W / 2, cy), (W * 0.7, cy - wing * H * 0.1), (W, tip)],
           fill=(35, 35, 40, 255), width=max(2, int(H * 0.12)), joint="curve")  # fmt: skip
    d.ellipse([W * 0.42, cy - H * 0.1, W * 0.58, cy + H * 0.12], fill=(35, 35, 40, 255))
    return _finish(img, width, width * 0.6)


def pinwheel(radius: float, angle: float, colours) -> Sprite:
    """A toy windmill turning silently on its stick. Anchor: hub."""
    img, d = _canvas(radius * 2, radius * 4)
    W = img.size[0]
    c = W / 2
    d.line([c, c, c, img.size[1]], fill=(120, 100, 70, 255), width=2 * SS)
    for k in range(4):
        a = angle + k * math.pi / 2
        pts = [
            (c, c),
            (c + c * math.cos(a), c + c * math.sin(a)),
            (c + c * 0.7 * math.cos(a + 0.6), c + c * 0.7 * math.sin(a + 0.6)),
        ]
        d.polygon(pts, fill=_shade(colours[k % len(colours)], 1))
    return _finish(img, radius * 2, radius * 4, (0.5, 0.25))


def stamp(image: Image.Image, height: float) -> Sprite:
    """A corpus stamp photograph (RGBA) scaled to ``height`` pixels. Anchor: bottom centre."""
    w = max(1, round(image.width * height / max(1, image.height)))
    return to_sprite(
        image.convert("RGBA").resize((w, max(1, round(height))), Image.Resampling.LANCZOS), (0.5, 1.0)
    )
