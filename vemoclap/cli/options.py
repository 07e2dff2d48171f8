"""Options more than one subcommand takes, each written once: the device and models folder, the
extractors and their shortcut options, comma-separated lists."""

from __future__ import annotations

import argparse
from pathlib import Path

MODELS_DIR_HELP = "directory searched first for every model (also $VEMOCLAP_MODELS_DIR)"
DEVICE_HELP = "auto (GPU when there is one), cpu, cuda, cuda:1 ..."


def extractors_help() -> str:
    from ..registry import EXTRACTORS, default_extractors

    return (
        f"comma-separated extractors to run, from {', '.join(EXTRACTORS)} (default: {', '.join(default_extractors())})"
    )


def csv_list(value: str | None) -> list[str] | None:
    """``"a, b,,c"`` → ``["a", "b", "c"]``; nothing given → None."""
    if not value:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _bounded_int(low: int, what: str):
    """An argparse type: a whole number ≥ ``low``; anything else is argparse's one line and exit 2."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is not allowed: {what}")
        return value

    parse.__name__ = "whole number"
    return parse


positive_int = _bounded_int(1, "give 1 or more")
nonnegative_int = _bounded_int(0, "give 0 or more")


def add_models_dir(parser: argparse.ArgumentParser, text: str = MODELS_DIR_HELP) -> None:
    parser.add_argument("--models-dir", type=Path, default=None, help=text)


def add_device(parser: argparse.ArgumentParser, default: str = "auto", text: str = DEVICE_HELP) -> None:
    parser.add_argument("--device", default=default, help=text)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--models-dir``: where the models run and where they are found."""
    add_device(parser)
    add_models_dir(parser)


def add_face_detector(parser: argparse.ArgumentParser) -> None:
    from ..extractors.faces import detector_choices, detector_help

    parser.add_argument("--face-detector", default=None, choices=detector_choices(), help=detector_help())


def add_extractor_options(parser: argparse.ArgumentParser, text: str | None = None) -> None:
    """``--extractors`` and the shortcuts for two extractors' options: ``--whisper-model``, ``--face-detector``."""
    parser.add_argument("--extractors", default=None, help=text or extractors_help())
    parser.add_argument("--whisper-model", default=None, help="Whisper size or checkpoint path")
    add_face_detector(parser)


def add_quiet(parser: argparse.ArgumentParser, text: str = "no progress bar") -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help=text)


__all__ = [
    "DEVICE_HELP",
    "extractors_help",
    "MODELS_DIR_HELP",
    "add_device",
    "add_extractor_options",
    "add_face_detector",
    "add_model_options",
    "add_models_dir",
    "add_quiet",
    "csv_list",
    "nonnegative_int",
    "positive_int",
]
