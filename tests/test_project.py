"""The project's own promises: README commands are what CI runs; the layout asked for exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Set up and test.*?```bash\n(.*?)```", text, re.S)
    assert block, "README has a 'Set up and test' bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_commands():
    install, test = _readme_commands()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert install in ci_lines and test in ci_lines
    assert ci_lines.index(install) < ci_lines.index(test)


def test_layout():
    for entry in ["notebooks", "vemoclap", "features/README.md", "weights/README.md", "ekman_blacklist.txt",
                  "environment.yml", "tests", "README.md", "pyproject.toml", "benchmarks", ".ci/run"]:
        assert (ROOT / entry).exists(), entry


def test_console_script_declared():
    assert 'vemoclap = "vemoclap.cli:main"' in (ROOT / "pyproject.toml").read_text()
