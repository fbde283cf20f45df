"""Turn an unpacked package into work items: which sound, with which label, licence, transcript or image.

Each handler knows one packaging convention (plain files and game containers, Tux Paint stamps, Asterisk
prompts, Sphinx test utterances, sound fonts). Items are small and picklable; decoding happens later in
worker processes (see ``sfx_corpus``).
"""

from __future__ import annotations

import functools
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from v2a.data import archives
from v2a.data.soundfont import SoundFont, open_soundfont
from v2a.data.sources import Copyright, SourceSpec, read_text_file
from v2a.data.taxonomy import Labelled, label_path, make_labelled, tokens
from v2a.errors import InputError

# Extra files each handler needs unpacked besides the sounds.
SIDECARS = {
    "files": r"\.(pk3|wz|wad|cat|zip)$",
    "tuxpaint": r"/stamps/.*\.(png|txt)$",
    "asterisk": r"core-sounds-en\.txt(\.gz)?$",
    "sphinx": r"(transcription|\.fileids)$",
    "soundfont": r"$^",
}
PHRASES_PER_PRESET = 2


@dataclass(frozen=True)
class WorkItem:
    """One source sound to decode, clean and store.

    Attributes:
        package: package name.
        source: the sound's path inside the package (``container/member`` for container members,
            ``font.sf2#bank:program:variant`` for rendered phrases).
        label: taxonomy label.
        tags: descriptive words from the path.
        kind: sfx / ambience / speech / music / ui.
        license: licence of this file.
        path: file to decode (a plain file, or the container holding ``member``).
        member: name inside the container at ``path`` (None: ``path`` itself is the sound).
        render: (bank, program, variant) to render from the sound font at ``path``.
        transcript: what is said, for speech.
        image: picture paired with the sound (Tux Paint stamps).
        max_segments: keep at most this many 10 s segments.
    """

    package: str
    source: str
    label: str
    tags: tuple[str, ...]
    kind: str
    license: str
    path: str
    member: str | None = None
    render: tuple[int, int, int] | None = None
    transcript: str | None = None
    image: str | None = None
    max_segments: int | None = None


@dataclass
class ItemStats:
    """Why sounds of a package were not turned into items."""

    unlabelled: int = 0
    unlabelled_examples: list[str] = field(default_factory=list)


def collect_items(spec: SourceSpec, root: Path, copyright_: Copyright, stats: ItemStats) -> list[WorkItem]:
    """All work items of one unpacked package, in a deterministic order.

    Args:
        spec: the package's spec.
        root: folder the package was unpacked into.
        copyright_: its licence information.
        stats: counters updated with sounds that could not be labelled.

    Raises:
        InputError: a container in the package is corrupt, or the handler is unknown.
    """
    handlers: dict[str, Callable[..., Iterator[WorkItem]]] = {
        "files": _file_items,
        "tuxpaint": _tuxpaint_items,
        "asterisk": _asterisk_items,
        "sphinx": _sphinx_items,
        "soundfont": _soundfont_items,
    }
    if spec.handler not in handlers:
        raise InputError(f"source {spec.name}: unknown handler {spec.handler!r}; known: {sorted(handlers)}")
    items = list(handlers[spec.handler](spec, root, copyright_, stats))
    return sorted(items, key=lambda item: item.source)


def _relative_files(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path.relative_to(root).as_posix(), path


def _label(spec: SourceSpec, source: str, stats: ItemStats) -> Labelled | None:
    labelled = label_path(source, package=spec.name)
    if labelled is None and spec.fallback:
        labelled = make_labelled(spec.fallback, tokens(source, package=spec.name))
    if labelled is None:
        stats.unlabelled += 1
        if len(stats.unlabelled_examples) < 12:
            stats.unlabelled_examples.append(source.rsplit("/", 1)[-1])
    return labelled


def _item(spec: SourceSpec, source: str, labelled: Labelled, license_: str, path: Path, **extra) -> WorkItem:
    return WorkItem(
        package=spec.name,
        source=source,
        label=labelled.label,
        tags=labelled.tags,
        kind=labelled.kind,
        license=license_,
        path=str(path),
        max_segments=spec.max_segments if labelled.kind in ("music", "ambience") else None,
        **extra,
    )


def _file_items(spec: SourceSpec, root: Path, copyright_: Copyright, stats: ItemStats) -> Iterator[WorkItem]:
    include = re.compile(spec.include)
    exclude = re.compile(spec.exclude) if spec.exclude else None
    for rel, path in _relative_files(root):
        if archives.is_container(path):
            for name, note in archives.member_names(path):
                source = f"{rel}/{name}"
                if not include.search(source) or (exclude and exclude.search(source)):
                    continue
                text = source if not note else f"{rel}/{archives.cat_title(note)}"
                labelled = _label(spec, text, stats)
                if labelled is not None:
                    license_ = archives.cat_license(note) or copyright_.for_path(source)
                    yield _item(spec, source, labelled, license_, path, member=name)
        elif include.search(rel) and not (exclude and exclude.search(rel)):
            labelled = _label(spec, rel, stats)
            if labelled is not None:
                yield _item(spec, rel, labelled, copyright_.for_path(rel), path)


def _tuxpaint_items(
    spec: SourceSpec, root: Path, copyright_: Copyright, stats: ItemStats
) -> Iterator[WorkItem]:
    """Stamp sounds get the stamp's picture; ``<stamp>_desc[_lang].ogg`` are speech with the stamp's text."""
    include = re.compile(spec.include)
    for rel, path in _relative_files(root):
        if not include.search(rel):
            continue
        stem = re.sub(r"_desc(_[A-Za-z_]+)?$", "", path.stem)
        txt = path.with_name(stem + ".txt")
        if "_desc" in path.stem:
            lang = path.stem.split("_desc", 1)[1].lstrip("_") or "en"
            text = _stamp_text(txt, lang)
            if text:
                speech = make_labelled("speech/voice", (lang, *tokens(stem)))
                yield _item(spec, rel, speech, copyright_.for_path(rel), path, transcript=text)
            continue
        labelled = _label(spec, rel, stats)
        if labelled is not None:
            png = path.with_name(stem + ".png")
            yield _item(
                spec, rel, labelled, copyright_.for_path(rel), path, image=str(png) if png.exists() else None
            )


def _stamp_text(txt: Path, lang: str) -> str | None:
    """The description of a stamp in one language from its .txt (first line English, then ``xx.utf8=``)."""
    if not txt.exists():
        return None
    lines = [ln.strip() for ln in txt.read_text(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return None
    if lang == "en":
        return lines[0]
    for line in lines[1:]:
        key, _, value = line.partition("=")
        if key.split(".")[0] == lang and value:
            return value.strip()
    return None


def _asterisk_items(
    spec: SourceSpec, root: Path, copyright_: Copyright, stats: ItemStats
) -> Iterator[WorkItem]:
    """Asterisk prompts: ``<id>: text`` lines of core-sounds-en.txt name what each wav says."""
    found = sorted(root.rglob("core-sounds-en.txt*"))
    if not found:
        raise InputError(f"source {spec.name}: no core-sounds-en.txt transcript list (from {spec.extras})")
    transcripts = {}
    for line in read_text_file(found[0]).splitlines():
        key, sep, text = line.partition(":")
        if sep and text.strip() and " " not in key.strip():
            transcripts[key.strip()] = text.strip()
    include = re.compile(spec.include)
    speech = make_labelled("speech/female", ("prompt", "telephony"))
    for rel, path in _relative_files(root):
        if not include.search(rel):
            continue
        key = re.sub(r"^.*?/sounds/[^/]+/|\.wav$", "", rel)  # "digits/1" for .../en_US_f_Allison/digits/1.wav
        if key in transcripts:
            yield _item(spec, rel, speech, copyright_.for_path(rel), path, transcript=transcripts[key])
        else:
            stats.unlabelled += 1


def _sphinx_items(
    spec: SourceSpec, root: Path, copyright_: Copyright, stats: ItemStats
) -> Iterator[WorkItem]:
    """Sphinx test data: ``<s> text </s> (id)`` lines in ``*.transcription`` files."""
    transcripts = {}
    for path in root.rglob("*transcription"):
        for line in path.read_text(errors="replace").splitlines():
            match = re.match(r"\s*(?:<s>)?\s*(.*?)\s*(?:</s>)?\s*\(([^)]+)\)\s*$", line)
            if match:
                transcripts[match.group(2).strip()] = match.group(1).strip().lower()
    include = re.compile(spec.include)
    speech = make_labelled("speech/voice", ("read", "speech"))
    for rel, path in _relative_files(root):
        if include.search(rel):
            text = transcripts.get(path.stem)
            if text:
                yield _item(spec, rel, speech, copyright_.for_path(rel), path, transcript=text)
            else:
                stats.unlabelled += 1


def _soundfont_items(
    spec: SourceSpec, root: Path, copyright_: Copyright, stats: ItemStats
) -> Iterator[WorkItem]:
    """Two seeded phrases per melodic preset of bank 0 and per drum kit; GM sound effects are skipped."""
    include = re.compile(spec.include)
    for rel, path in _relative_files(root):
        if not include.search(rel):
            continue
        font: SoundFont = open_soundfont(str(path))
        for preset in sorted(font.presets, key=lambda p: (p.bank, p.program)):
            if preset.family is None or preset.bank not in (0, 128) or not preset.zones:
                continue
            labelled = make_labelled(f"music/{preset.family}", tuple(tokens(preset.name)))
            for variant in range(PHRASES_PER_PRESET):
                source = f"{rel}#{preset.bank}:{preset.program}:{variant}"
                yield _item(
                    spec,
                    source,
                    labelled,
                    copyright_.for_path(rel),
                    path,
                    render=(preset.bank, preset.program, variant),
                )


@functools.lru_cache(maxsize=4)
def _open_zip(path: str) -> zipfile.ZipFile:
    """Zip archives stay open per worker process: 0 A.D.'s holds 36 000 entries, read once."""
    return zipfile.ZipFile(path)


@functools.lru_cache(maxsize=4)
def _small_container(path: str) -> dict[str, bytes]:
    return {m.name: m.data for m in archives.iter_members(path)}


def read_item_bytes(item: WorkItem) -> bytes | str:
    """The encoded sound of an item: bytes for container members, else the file path."""
    if item.member is None:
        return item.path
    if Path(item.path).suffix.lower() in archives.ZIP_SUFFIXES:
        try:
            return _open_zip(item.path).read(item.member)
        except (KeyError, zipfile.BadZipFile, OSError) as err:
            raise InputError(f"cannot read {item.member} from {item.path}: {err}") from None
    return _small_container(item.path)[item.member]
