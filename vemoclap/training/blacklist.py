"""The blacklist of videos whose label is unreliable, and keyword suggestions for it.

File format (``ekman_blacklist.txt``): one video file name per line (the name, not a path);
``#`` starts a comment when it begins the line or follows a space; blank lines are ignored.

Ekman-6 file names carry the search keyword their video was found with, and the reference
removed videos whose keyword does not show the class's emotion (the paper, Sulun et al. 2024, and its
published `ekman_blacklist.txt`: 128 train and 130 test videos). :func:`suggest`
finds file names holding those keywords, for a person to confirm — a keyword match is a hint,
not a verdict (a "pensive" video may still be sad). Matching is on word tokens: the file stem is
split at ``_ - . space``, at digit/letter boundaries and at camelCase humps, lower-cased, and a
keyword matches its tokens in a row or, written together, one token ("joy ride" matches
``joyride_3`` and ``Joy-Ride``; "9 11" matches ``911`` and ``9_11``).

People named Joy cannot be told from joy by a file name in general: only "joy" next to a known
surname or a naming word (``named_joy``, ``miss_joy``) is suggested; look through the rest of the
joy class by eye.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .._util import atomic_write_text
from ..errors import NotFound
from .dataset import Video

log = logging.getLogger(__name__)

SUGGESTED_HEADER = "# suggested by `vemoclap blacklist suggest` (keyword matches, confirm each) on {date}"


@dataclass(frozen=True)
class KeywordRule:
    label: str  # the class whose videos the rule is about
    keywords: tuple[str, ...]
    reason: str  # why such a video's label is unreliable


# Per class, from the reference's cleaning rules (its paper's problem keywords per class; Sulun et al. 2024).
_JOY_SURNAMES = (
    "behar",
    "reid",
    "villa",
    "mangano",
    "division",
    "philbin",
    "bryant",
    "lauren",
    "taylor",
    "williams",
    "harjo",
    "adamson",
    "crookes",
    "anna",
    "garner",
    "huerta",
    "wilson",
)
_JOY_NAMING = ("named", "name is", "miss", "mrs", "ms", "aunt", "auntie", "grandma", "lady", "baby", "sister")

RULES: tuple[KeywordRule, ...] = (
    KeywordRule("anger", ("annoying", "annoyed"), "a single annoying person with nobody angry"),
    KeywordRule(
        "disgust",
        ("flashing", "flash light", "flash lights", "flashing lights", "strobe", "rapid camera", "rapid camera motion"),
        "flashing lights / rapid camera motion",
    ),
    KeywordRule("disgust", ("bored", "boredom", "boring"), "boredom"),
    KeywordRule("disgust", ("loathing", "loathe", "self loathing"), "loathing"),
    KeywordRule(
        "fear", ("counter terrorism", "counter terror", "counterterrorist", "counter terrorist"), "counter-terrorism"
    ),
    KeywordRule("fear", ("underwater", "under water"), "underwater footage"),
    KeywordRule(
        "fear",
        (
            "9 11",
            "nine eleven",
            "september 11",
            "sept 11",
            "sep 11",
            "11 september",
            "ground zero",
            "twin towers",
            "wtc",
        ),
        "9/11 aftermath",
    ),
    KeywordRule(
        "fear",
        ("suspect", "apprehension", "apprehend", "apprehended", "arrest", "arrested", "arresting"),
        "suspect apprehension",
    ),
    KeywordRule("joy", ("joy ride", "joy rides", "joy riding", "joy rider", "joy riders"), "joyride"),
    KeywordRule("joy", ("ode to joy", "an die freude"), 'the music "Ode to Joy"'),
    KeywordRule(
        "joy",
        tuple(f"joy {surname}" for surname in _JOY_SURNAMES) + tuple(f"{word} joy" for word in _JOY_NAMING),
        "a person named Joy",
    ),
    KeywordRule("sadness", ("pensive",), '"pensive"'),
    KeywordRule("surprise", ("distraction", "distracted", "distracting"), "distraction"),
    KeywordRule("surprise", ("astonishing", "impressive"), "impressive feats labelled astonishing"),
)


@dataclass(frozen=True)
class Suggestion:
    video: Video
    keyword: str
    reason: str

    @property
    def name(self) -> str:
        return self.video.name

    def line(self) -> str:
        """The blacklist line for it: the file name with its reason as a comment."""
        return f"{self.name}  # {self.video.label}: '{self.keyword}' — {self.reason}"


# ---- the file --------------------------------------------------------------------------------

_COMMENT = re.compile(r"(^|\s)#.*$")


def parse_blacklist(text: str) -> list[str]:
    """File names listed in a blacklist text, in order, without duplicates."""
    names: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        name = _COMMENT.sub("", line).strip()
        if name and name not in seen:
            seen.add(name)
            names.append(name)
    return names


def read_blacklist(path) -> list[str]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise NotFound(f"{path}: blacklist file not found")
    return parse_blacklist(path.read_text(encoding="utf-8"))


def append_suggestions(path, suggestions: Iterable[Suggestion]) -> int:
    """Add the suggestions' file names not yet listed to the blacklist file (created if absent),
    under a dated header that marks them as suggestions; atomic. Returns how many were added."""
    path = Path(path).expanduser()
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    listed = {name.lower() for name in parse_blacklist(text)}
    new, seen = [], set()
    for suggestion in suggestions:
        key = suggestion.name.lower()
        if key not in listed and key not in seen:
            seen.add(key)
            new.append(suggestion.line())
    if not new:
        return 0
    if text and not text.endswith("\n"):
        text += "\n"
    header = SUGGESTED_HEADER.format(date=_dt.date.today().isoformat())
    atomic_write_text(path, text + ("\n" if text else "") + header + "\n" + "\n".join(new) + "\n")
    log.info("added %d names to %s", len(new), path)
    return len(new)


# ---- suggestions -----------------------------------------------------------------------------


def tokens(name: str) -> list[str]:
    """Lower-case word tokens of a file name's stem (see the module docstring)."""
    stem = Path(name).stem if "." in name else name
    stem = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", stem)  # camelCase humps
    return re.findall(r"[a-z]+|[0-9]+", stem.lower())


def _matches(keyword: str, words: Sequence[str]) -> bool:
    wanted = tokens(keyword)
    if not wanted:
        return False
    joined = "".join(wanted)
    if joined in words:
        return True
    n = len(wanted)
    return any(list(words[i : i + n]) == wanted for i in range(len(words) - n + 1))


def suggest(
    videos: Iterable[Video], *, rules: Sequence[KeywordRule] = RULES, all_labels: bool = False
) -> list[Suggestion]:
    """Videos whose file name holds a problem keyword of their class (``all_labels``: of any
    class), one suggestion per video (its first matching keyword), in the videos' order."""
    found: list[Suggestion] = []
    for video in videos:
        words = tokens(video.name)
        for rule in rules:
            if not all_labels and rule.label.lower() != video.label.lower():
                continue
            keyword = next((k for k in rule.keywords if _matches(k, words)), None)
            if keyword is not None:
                found.append(Suggestion(video, keyword, rule.reason))
                break
    return found
