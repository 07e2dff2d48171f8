"""What to tell a user when a model cannot be had: where it was looked for, and the command that
fetches it."""

from __future__ import annotations

import os

from ..errors import ModelUnavailable, one_line
from .kinds import kind_of
from .layout import MODELS_DIR_ENV, models_root


class MissingModels(ModelUnavailable):
    """Several models cannot be had: one line per model, then the command that fetches them."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        super().__init__("; ".join(self.lines))


def fetch_command(keys: list[str] | tuple[str, ...], models_dir: str | os.PathLike | None = None) -> str:
    """The command that fetches ``keys`` into the models dir in use."""
    where = f" --dir {models_dir}" if models_dir else ""
    return f"vemoclap download-models --only {','.join(keys)}{where}"


def unavailable(
    key: str, models_dir: str | os.PathLike | None, why: str = "", *, name: str | None = None
) -> ModelUnavailable:
    """The error for a model that cannot be had, saying where it was looked for and what to do."""
    ref, kind = kind_of(key)
    where = kind.label(ref, name or "small")
    hint = f"run `{fetch_command([key], models_dir)}` where there is internet"
    if not models_dir:
        hint += f" (or pass --models-dir / set {MODELS_DIR_ENV} to a folder that has it)"
    why = one_line(why, limit=200) if why else ""  # one line for people
    reason = f": {why}" if why else ""
    return ModelUnavailable(
        f"model '{key}' ({where}) is unavailable (not in {models_root(models_dir)}){reason}; {hint}"
    )


def offline_lines(wanted: list[tuple[str, str | None]], models_dir, whys: dict) -> list[str]:
    """One line per (model key, Whisper size or None) that is missing and cannot be downloaded
    (``whys[(key, size)]``: why, naming the host it comes from), then a last line, starting "fix: ",
    with the command that fetches them all."""
    root = models_root(models_dir)
    lines = [
        f"model '{key}'{f' ({stem})' if stem else ''} is not in {root} and cannot be downloaded: {whys[(key, stem)]}"
        for key, stem in wanted
    ]
    fix = fetch_command(list(dict.fromkeys(key for key, _ in wanted)), models_dir)
    whisper = sorted({stem for key, stem in wanted if key == "whisper" and stem})
    if whisper:
        fix += f" --whisper {','.join(whisper)}"
    lines.append(
        f"fix: run `{fix}` where there is internet, then run this again"
        + ("" if models_dir else " (or pass --models-dir DIR)")
        + "; `vemoclap demo` runs offline on tiny random models"
    )
    return lines
