"""Video datasets for training: the files, their labels and their train / validation / test splits.

A dataset is one of:

* **class folders** (the Ekman-6 layout): ``<root>/<label>/<file>``, or with the splits given as
  folders ``<root>/<split>/<label>/<file>`` (split folders named train, val / validation / valid,
  test). Label folders are matched case-insensitively against the known labels (Ekman-6 by
  default); other folder names are accepted as labels with a warning.
* **a CSV manifest** with columns ``path``, ``label`` and optionally ``split``; paths are relative
  to the CSV's folder (absolute paths work too). A path may be an http(s) link: it is fetched
  through the one guarded download path (:func:`vemoclap.sources.fetch_link`: private addresses
  refused after every redirect, byte and length limits) into ``downloads/`` beside the CSV, once.

Splits: given ones (split folders or the manifest's column) are kept; otherwise a deterministic
stratified split (scikit-learn, ``seed``) makes train / test (``test_size``, default 0.5 like
Ekman-6's original 819 / 818). When no validation videos are given, ``val_size`` (10 %) of train
is held out for validation, stratified and seeded too.

Video ids are stable, unique and safe as file names: ``<label>/<file stem>`` with characters
outside ``[A-Za-z0-9._-]`` replaced by ``_`` and ``-2``, ``-3`` … added on collisions (in sorted
order of the original relative paths, case-insensitively, so ids do not change between runs).
The original file name stays available as :attr:`Video.name` — the blacklist is by file name.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import UserError
from ..labels import EMOTIONS
from ..media import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_ID_PART = 100


class DatasetError(UserError):
    """A dataset that cannot be used; the message is one line naming the file and the fix."""


@dataclass(frozen=True)
class Video:
    """One labelled video of a dataset."""

    id: str  # stable, unique, filesystem-safe: "<label>/<stem>"
    path: Path
    label: str
    split: str | None = None  # "train", "val", "test" (None before splitting)

    @property
    def name(self) -> str:
        """The original file name (what the blacklist lists)."""
        return self.path.name


# ---- ids -------------------------------------------------------------------------------------


def safe_part(text: str, fallback: str = "video") -> str:
    """``text`` reduced to ``[A-Za-z0-9._-]`` (no leading dots), at most MAX_ID_PART characters."""
    safe = _UNSAFE.sub("_", text).strip("._") or fallback
    return safe[:MAX_ID_PART]


def assign_ids(items: Sequence[tuple[str, str]]) -> list[str]:
    """Ids for (label, relative path) pairs, in the given order: ``<label>/<stem>`` made safe,
    collisions (compared case-insensitively, for case-insensitive file systems) numbered in sorted
    order of the relative paths so the same dataset always gets the same ids."""
    order = sorted(range(len(items)), key=lambda i: (items[i][0], items[i][1]))
    taken: set[str] = set()
    ids: list[str | None] = [None] * len(items)
    for index in order:
        label, relative = items[index]
        base = f"{safe_part(label, 'label')}/{safe_part(Path(relative).stem)}"
        candidate, number = base, 1
        while candidate.lower() in taken:
            number += 1
            candidate = f"{base}-{number}"
        taken.add(candidate.lower())
        ids[index] = candidate
    return [str(i) for i in ids]


# ---- labels ----------------------------------------------------------------------------------


def _normalize_labels(
    found: Iterable[str], known: Sequence[str] | None, source: str, strict: bool = False
) -> dict[str, str]:
    """Map each found label to its canonical name: the known label it matches case-insensitively,
    else itself (with one warning listing the unknown ones; an error when ``strict``)."""
    found = sorted(set(found))
    if not known:
        return {label: label for label in found}
    by_lower = {label.lower(): label for label in known}
    mapping = {label: by_lower.get(label.strip().lower(), label.strip()) for label in found}
    unknown = sorted({label for label, canonical in mapping.items() if canonical.lower() not in by_lower})
    if unknown and strict:
        raise DatasetError(
            f"{source}: label(s) {', '.join(unknown)} are not in the label set "
            f"({', '.join(known)}); rename the folders / rows or pass the right labels"
        )
    if unknown:
        log.warning(
            "%s: labels %s are not among the known labels (%s); using them as they are",
            source,
            ", ".join(unknown),
            ", ".join(known),
        )
    return mapping


def split_name(value: str, where: str) -> str:
    split = _SPLIT_ALIASES.get(value.strip().lower())
    if split is None:
        raise DatasetError(f"{where}: unknown split '{value}'; use train, val or test")
    return split


# ---- loading ---------------------------------------------------------------------------------


def _video_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in VIDEO_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files)


def _from_folders(root: Path, known: Sequence[str] | None, strict: bool) -> list[Video]:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise DatasetError(
            f"{root}: no class folders; expected <root>/<label>/<video files> "
            f"(e.g. {root}/joy/clip.mp4) or a CSV manifest with columns path,label[,split]"
        )
    split_layout = all(p.name.lower() in _SPLIT_ALIASES for p in subdirs)
    entries: list[tuple[Path, str, str | None]] = []  # (file, label folder name, split)
    if split_layout:
        for split_dir in subdirs:
            split = split_name(split_dir.name, str(split_dir))
            for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                entries += [(f, label_dir.name, split) for f in _video_files(label_dir)]
    else:
        for label_dir in subdirs:
            files = _video_files(label_dir)
            if not files:
                log.warning("%s: no video files in this class folder", label_dir)
            entries += [(f, label_dir.name, None) for f in files]
    if not entries:
        extensions = ", ".join(sorted(VIDEO_EXTENSIONS)[:6])
        raise DatasetError(f"{root}: no video files in its class folders (looked for {extensions} …)")
    mapping = _normalize_labels((label for _, label, _ in entries), known, str(root), strict)
    relatives = [str(f.relative_to(root)) for f, _, _ in entries]
    ids = assign_ids([(mapping[label], rel) for (_, label, _), rel in zip(entries, relatives)])
    return [Video(id=i, path=f, label=mapping[label], split=split) for i, (f, label, split) in zip(ids, entries)]


def _read_rows(csv_path: Path, required: Sequence[str], needs: str) -> tuple[dict[str, str], list[tuple[int, dict]]]:
    """(lower-case column → header name, [(line number, row)]) of a CSV; ``needs`` says what it must hold."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = {name.strip().lower(): name for name in reader.fieldnames or []}
            missing = [name for name in required if name not in columns]
            if missing:
                raise DatasetError(
                    f"{csv_path}: the manifest lacks column(s) {', '.join(missing)}; it needs a header row with {needs}"
                )
            rows = [(number, row) for number, row in enumerate(reader, start=2)]
    except UnicodeDecodeError:
        raise DatasetError(f"{csv_path}: not a UTF-8 text CSV file") from None
    except csv.Error as exc:  # a 50 MB field, a NUL byte ...: the line, not a traceback
        raise DatasetError(f"{csv_path}: not a readable CSV near line {reader.line_num} ({exc})") from None
    if not rows:
        raise DatasetError(f"{csv_path}: the manifest has no rows")
    return columns, rows


def _from_manifest(
    csv_path: Path, known: Sequence[str] | None, strict: bool, allow_private: bool = False
) -> list[Video]:
    from ..sources import fetch_link, is_url

    columns, rows = _read_rows(csv_path, ("path", "label"), "path,label and optionally split")
    base = csv_path.parent
    entries: list[tuple[Path, str, str | None]] = []
    seen: dict[Path, int] = {}
    for number, row in rows:
        where = f"{csv_path}, line {number}"
        raw_path = (row.get(columns["path"]) or "").strip()
        label = (row.get(columns["label"]) or "").strip()
        if not raw_path or not label:
            raise DatasetError(f"{where}: empty path or label")
        if is_url(raw_path):
            try:
                path = fetch_link(raw_path, base / "downloads", allow_private=allow_private)
            except UserError as exc:
                raise DatasetError(f"{where}: {exc}") from None
        else:
            path = Path(raw_path).expanduser()
            path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise DatasetError(f"{where}: file not found: {path}")
        resolved = path.resolve()
        if resolved in seen:
            raise DatasetError(f"{where}: {raw_path} is listed twice (also line {seen[resolved]})")
        seen[resolved] = number
        split = None
        if "split" in columns:
            value = (row.get(columns["split"]) or "").strip()
            if not value:
                raise DatasetError(f"{where}: empty split; give every row a split or drop the split column")
            split = split_name(value, where)
        entries.append((path, label, split))
    mapping = _normalize_labels((label for _, label, _ in entries), known, str(csv_path), strict)
    relatives = []
    for path, _, _ in entries:
        try:
            relatives.append(str(path.resolve().relative_to(base.resolve())))
        except ValueError:  # outside the CSV's folder
            relatives.append(str(path.resolve()))
    ids = assign_ids([(mapping[label], rel) for (_, label, _), rel in zip(entries, relatives)])
    return [Video(id=i, path=p, label=mapping[label], split=split) for i, (p, label, split) in zip(ids, entries)]


def load_dataset(
    path,
    *,
    labels: Sequence[str] | None = EMOTIONS,
    test_size: float = 0.5,
    val_size: float = 0.1,
    seed: int = 0,
    strict_labels: bool = False,
    allow_private: bool = False,
) -> list[Video]:
    """The videos of a dataset folder or CSV manifest, each with its label and split, sorted by id.

    ``allow_private``: links in a manifest may reach private/loopback addresses (off by default).

    ``labels``: the known label names (matched case-insensitively; None accepts any without a
    warning); ``strict_labels``: a label outside them is an error instead of a warning.
    Splits: see the module docstring; ``val_size=0`` makes no validation split.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset folder or manifest")
    if path.is_dir():
        videos = _from_folders(path, labels, strict_labels)
    elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
        videos = _from_manifest(path, labels, strict_labels, allow_private)
    else:
        raise DatasetError(f"{path}: a dataset is a folder of class folders or a .csv manifest")
    videos = assign_splits(videos, test_size=test_size, val_size=val_size, seed=seed)
    counts = {split: sum(v.split == split for v in videos) for split in SPLITS}
    log.info(
        "%s: %d videos, %d labels (%s)",
        path,
        len(videos),
        len({v.label for v in videos}),
        ", ".join(f"{k} {n}" for k, n in counts.items()),
    )
    return sorted(videos, key=lambda v: v.id)


def list_videos(path) -> list[Video]:
    """The videos to analyze (no labels needed): every video file under a folder (any layout,
    hidden files and folders left out), or the rows of a CSV with a ``path`` (or ``source``)
    column — paths relative to the CSV's folder; a ``label`` column is kept when there is one.

    Each video's id is its path as found (relative to the folder, or as the CSV gives it), so
    ids are unique and the same in every run. Files a CSV names that are not there are kept: the
    analysis fails them one by one, so one bad row does not stop a batch.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such folder or CSV file")
    if path.is_dir():
        files = _video_files(path)
        if not files:
            extensions = ", ".join(sorted(VIDEO_EXTENSIONS)[:6])
            raise DatasetError(f"{path}: no video files in this folder (looked for {extensions} …)")
        return [Video(id=f.relative_to(path).as_posix(), path=f, label="") for f in files]
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise DatasetError(f"{path}: give a folder of videos or a .csv file with a path column")
    columns, rows = _read_rows(path, (), "a path column")
    key = next((columns[name] for name in ("path", "source") if name in columns), None)
    if key is None:
        raise DatasetError(f"{path}: the CSV has no path (or source) column; it needs a header row with path")
    label_key = columns.get("label")
    videos, seen = [], set()
    for number, row in rows:
        raw = (row.get(key) or "").strip()
        if not raw:
            raise DatasetError(f"{path}, line {number}: empty path")
        file = Path(raw).expanduser()
        file = file if file.is_absolute() else path.parent / file
        if raw in seen:
            log.warning("%s, line %d: %s is listed twice; analyzing it once", path, number, raw)
            continue
        seen.add(raw)
        videos.append(Video(id=raw, path=file, label=(row.get(label_key) or "").strip() if label_key else ""))
    return videos


# ---- splits ----------------------------------------------------------------------------------


def _stratified(videos: list[Video], size: float, seed: int, what: str) -> tuple[list[Video], list[Video]]:
    """(rest, held out): ``size`` of ``videos`` held out, stratified by label when every class can
    be (scikit-learn needs at least 2 videos per class and one per class on each side)."""
    from sklearn.model_selection import train_test_split

    videos = sorted(videos, key=lambda v: v.id)  # the split depends only on ids, labels and seed
    labels = [v.label for v in videos]
    try:
        rest, held = train_test_split(videos, test_size=size, random_state=seed, stratify=labels)
    except ValueError:  # a class with too few videos for both sides
        log.warning(
            "cannot stratify the %s split of %d videos (a class has too few); splitting without stratification",
            what,
            len(videos),
        )
        try:
            rest, held = train_test_split(videos, test_size=size, random_state=seed)
        except ValueError as inner:
            raise DatasetError(f"cannot make a {what} split of {len(videos)} videos: {inner}") from None
    return list(rest), list(held)


def assign_splits(
    videos: Sequence[Video], *, test_size: float = 0.5, val_size: float = 0.1, seed: int = 0
) -> list[Video]:
    """Keep given splits; otherwise split train / test, then hold ``val_size`` of train out as val.

    Either every video has a split or none has (mixing is an error). Deterministic for a seed.
    """
    videos = list(videos)
    given = [v.split is not None for v in videos]
    if any(given) and not all(given):
        raise DatasetError("some videos have a split and some do not; give every video a split or none")
    if not all(given):
        if not 0 < test_size < 1:
            raise DatasetError(f"test_size must be between 0 and 1, not {test_size}")
        train, test = _stratified(videos, test_size, seed, "test")
        videos = [dataclasses.replace(v, split="train") for v in train] + [
            dataclasses.replace(v, split="test") for v in test
        ]
    if val_size and not any(v.split == "val" for v in videos):
        if not 0 < val_size < 1:
            raise DatasetError(f"val_size must be between 0 and 1, not {val_size}")
        train = [v for v in videos if v.split == "train"]
        if len(train) >= 2:
            rest, val = _stratified(train, val_size, seed, "validation")
            val_ids = {v.id for v in val}
            videos = [dataclasses.replace(v, split="val") if v.id in val_ids else v for v in videos]
    return videos


def apply_blacklist(
    videos: Sequence[Video], names: Iterable[str], splits: Sequence[str] | None = ("train", "test")
) -> list[Video]:
    """``videos`` without those whose file name is listed (case-insensitively; a listed name
    without an extension matches the stem), in the given ``splits`` only (None: every split).

    "train" covers "val" too: the validation videos are held out of train. Names that match
    nothing are logged (the list may cover a bigger dataset than this one).
    """
    wanted = {name.strip().lower() for name in names if name.strip()}
    if splits is not None:
        chosen = {split_name(s, "blacklist splits") for s in splits}
        if "train" in chosen:
            chosen.add("val")
    kept, used = [], set()
    for video in videos:
        keys = {video.name.lower(), video.path.stem.lower()}
        hit = keys & wanted
        if hit and (splits is None or video.split in chosen):
            used |= hit
            continue
        kept.append(video)
    removed = len(videos) - len(kept)
    unused = wanted - used - {v.name.lower() for v in videos} - {v.path.stem.lower() for v in videos}
    log.info("blacklist removed %d of %d videos", removed, len(videos))
    if unused:
        log.info("%d blacklisted names are not in this dataset", len(unused))
    return kept


def split_counts(videos: Iterable[Video]) -> dict[str, dict[str, int]]:
    """split → label → number of videos (for a table in logs and reports)."""
    table: dict[str, dict[str, int]] = {}
    for video in videos:
        row = table.setdefault(video.split or "-", {})
        row[video.label] = row.get(video.label, 0) + 1
    return table
