"""Every code block of README.md and notebooks/README.md runs as written, on tiny models.

``video.mp4`` stands for a generated video (with a face and a soundtrack) in a fresh working folder,
``runs/mine`` for a classifier the user trained, and ``$VEMOCLAP_MODELS_DIR`` holds the session's
tiny models. Python blocks run in this process; each shell command through the venv's ``vemoclap``.
A command whose comment (or the comment line above it) says ``(needs internet)``, ``(needs a
camera)`` or ``(runs until stopped)`` (with or without the brackets) is not run; neither are the commands in :data:`NOT_RUN`.
Any other shell line must be a ``vemoclap`` command, so a new README line is run or classified here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "notebooks" / "README.md")
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
EXEMPT = ("needs internet", "needs a camera", "runs until stopped")
# Shell lines that are not run here, by their start, and why.
NOT_RUN = {
    "python3 -m venv": "the install itself",
    ".venv/bin/python -m pytest": "the test suite itself",
    ".venv/bin/vemoclap analyze sample:": "needs internet (the reference's sample video and models)",
    "bash scripts/colab_check.sh": "downloads Colab's packages (3.1 GB of wheels)",
    "vemoclap blacklist": "needs the Ekman-6 videos (its rules are tested in tests/test_dataset.py)",
    "vemoclap extract": "needs a labelled dataset (tests/test_extract.py runs it on generated videos)",
    "vemoclap train": "needs extracted features (tested in tests/test_train.py on generated ones)",
    "vemoclap evaluate": "needs extracted features (tested in tests/test_train.py on generated ones)",
    "vemoclap ablate": "needs extracted features (tested in tests/test_train.py on generated ones)",
}


def code_blocks(language: str) -> list[tuple[str, str]]:
    """(where, text) of every ``language`` block of the docs."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            if match.group(1) == language:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{doc.relative_to(ROOT)}:{line}", match.group(2)))
    return found


def shell_commands() -> list[tuple[str, str, str | None]]:
    """(where, command, why it is not run or None) of every command of the docs' bash blocks;
    backslash-continued lines are one command."""
    commands = []
    for where, text in code_blocks("bash"):
        above, pending = "", ""
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.lstrip().startswith("#") and not pending:
                above = line
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            command, pending = (pending + line).strip(), ""
            comment = above + " " + (command.split("  #", 1)[1] if "  #" in command else "")
            above = ""
            reason = next((marker for marker in EXEMPT if marker in comment), None)
            reason = reason or next((why for start, why in NOT_RUN.items() if command.startswith(start)), None)
            commands.append((where, command, reason))
    return commands


@pytest.fixture()
def workdir(tmp_path, monkeypatch, tiny_models):
    """A fresh working folder with video.mp4 (a face, a soundtrack) and runs/mine, models from the tiny set."""
    from vemoclap.generated_video import make_sample
    from vemoclap.testing import make_tiny_classifier
    from vemoclap.tiny import MANIFEST, manifest

    make_sample(tmp_path / "video.mp4", seconds=4.0, size=(320, 180), fps=10)
    make_tiny_classifier(tmp_path / "runs" / "mine")
    cache = tmp_path / "cache"
    demo = cache / "tiny-models"  # what `vemoclap demo` finds already built: the session's tiny models
    demo.mkdir(parents=True)
    for entry in tiny_models.iterdir():
        if entry.name != MANIFEST:
            (demo / entry.name).symlink_to(entry)
    (demo / MANIFEST).write_text(json.dumps(manifest(), indent=1))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VEMOCLAP_MODELS_DIR", str(tiny_models))
    monkeypatch.setenv("VEMOCLAP_CACHE", str(cache))
    return tmp_path


def test_the_docs_have_code_to_run():
    assert code_blocks("python"), "the README shows Python"
    runnable = [command for _, command, reason in shell_commands() if reason is None]
    assert len(runnable) >= 8
    for where, command, reason in shell_commands():
        assert reason or command.startswith(("vemoclap ", ".venv/bin/vemoclap ")), (
            f"{where}: `{command}` is neither a vemoclap command nor marked; mark it {EXEMPT} or add it to NOT_RUN"
        )


@pytest.mark.slow
@pytest.mark.parametrize("where, code", code_blocks("python"), ids=lambda value: str(value).split("\n")[0][:40])
def test_python_block_runs(where, code, workdir):
    import matplotlib.pyplot as plt

    names = {"__name__": "__readme__"}
    try:
        exec(compile(code, where, "exec"), names)
    finally:
        plt.close("all")
    if "result.save(" in code:  # what the README says the saved folder holds, with the timeline filled
        import pandas as pd

        assert len(pd.read_csv(workdir / "out" / "windows.csv")) > 0
        assert {p.name for p in (workdir / "out").glob("*.png")} >= {"probabilities.png", "timeline.png"}
        assert (workdir / "again" / "windows.csv").read_text() == (workdir / "out" / "windows.csv").read_text()
    if "export_annotated_video" in code:  # written when a face was found, else nothing at all
        video = names["video"]
        written = video.path is not None
        assert (workdir / "annotated.mp4").is_file() == written and (workdir / "annotated.csv").is_file() == written


def _vemoclap() -> list[str]:
    script = Path(sys.executable).with_name("vemoclap")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "vemoclap.cli"]


RUNNABLE = [(where, command) for where, command, reason in shell_commands() if reason is None]


@pytest.mark.slow
@pytest.mark.parametrize("where, command", RUNNABLE, ids=[c.split("  #")[0].strip() for _, c in RUNNABLE])
def test_shell_command_runs(where, command, workdir):
    argv = shlex.split(command.split("  #", 1)[0])
    assert Path(argv[0]).name == "vemoclap"
    run = subprocess.run(_vemoclap() + argv[1:], capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert run.returncode == 0, f"{where}: `{command}` exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    if "--save out/" in command:
        assert (workdir / "out" / "windows.csv").is_file() and (workdir / "out.json").is_file()
    if "--annotated-video" in command:
        assert "about" in run.stderr, "the time estimate comes before the annotating"
        found = "no face was found" not in run.stdout  # nothing is written when no face was found
        assert (workdir / "annotated.mp4").is_file() == found
    if "--clips joy joy.mp4" in command:
        assert ("wrote joy.mp4" in run.stdout) != ("no clip written" in run.stdout)
