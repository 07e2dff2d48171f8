"""The project's own promises: README commands are what CI runs; the layout asked for exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Set up and test.*?### For developers.*?```bash\n(.*?)```", text, re.S)
    assert block, "README's 'Set up and test' has a bash block for developers"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_commands():
    install, test = _readme_commands()
    ci_lines = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert install in ci_lines and test in ci_lines
    assert ci_lines.index(install) < ci_lines.index(test)


def test_layout():
    for entry in [
        "notebooks",
        "vemoclap",
        "features/README.md",
        "weights/README.md",
        "ekman_blacklist.txt",
        "environment.yml",
        "tests",
        "README.md",
        "pyproject.toml",
        "benchmarks",
        ".ci/run",
    ]:
        assert (ROOT / entry).exists(), entry


def test_console_script_declared():
    assert 'vemoclap = "vemoclap.cli:main"' in (ROOT / "pyproject.toml").read_text()


def _imports(module_path: Path, package_root: Path) -> list[tuple[str, bool]]:
    """(imported vemoclap module, at module level?) for every import in a file, those under
    ``if TYPE_CHECKING:`` left out (they never run)."""
    import ast

    parts = list(module_path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    package = parts if module_path.name == "__init__.py" else parts[:-1]
    tree = ast.parse(module_path.read_text())
    top_level = {id(node) for node in tree.body}
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        names = []
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
            # `from . import x` imports the submodule x, not the package's __init__ as such
            names = [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith("vemoclap"):
                found.append((name, id(node) in top_level))
    return found


def _module_graph(level_only: bool) -> dict[str, set[str]]:
    package_root = ROOT / "vemoclap"
    files = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in package_root.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = set()
        for name, top in _imports(path, package_root):
            if level_only and not top:
                continue
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def test_no_product_module_imports_testing():
    graph = _module_graph(level_only=False)
    offenders = {
        m: sorted(t for t in targets if t.startswith("vemoclap.testing"))
        for m, targets in graph.items()
        if not m.startswith("vemoclap.testing")
    }
    assert not {m: t for m, t in offenders.items() if t}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for target in graph.get(node, ()):
            if target.startswith(node + "."):  # a package importing its own submodules is not a cycle
                continue
            if state.get(target) == 1 and not node.startswith(target + "."):
                cycles.append(stack[stack.index(target) :] + [target] if target in stack else [node, target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    return cycles


def test_module_level_imports_have_no_cycles():
    assert not _cycles(_module_graph(level_only=True))


def test_imports_have_no_cycles_even_inside_functions():
    """An import inside a function hides a cycle from Python, not from the design: none are allowed
    (type-only imports aside)."""
    assert not _cycles(_module_graph(level_only=False))


def test_the_cycle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert not _cycles({"p": {"p.x"}, "p.x": {"q"}, "q": set()})


def _long_functions(limit: int) -> list[str]:
    """Functions over ``limit`` lines in vemoclap/, argparse builders (five or more add_argument or
    add_parser calls) excepted."""
    import ast

    found = []
    for path in sorted((ROOT / "vemoclap").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1
            if length <= limit:
                continue
            calls = [
                n
                for n in ast.walk(node)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in ("add_argument", "add_parser")
            ]
            if len(calls) < 5:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_over_100_lines():
    assert not _long_functions(100)
    assert _long_functions(3), "the length check finds short limits broken (it can fail)"


def test_every_command_option_says_what_it_does():
    """`vemoclap COMMAND --help` explains every option and argument of every command."""
    import argparse

    from vemoclap.cli import build_parser

    silent, twice = [], []

    def shown(action: argparse.Action) -> str:
        return str(action.metavar or action.dest.upper())

    def walk(parser: argparse.ArgumentParser, command: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{command} {name}")
            elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
                silent.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
        # one name, one meaning: no argument reads like an option's value (`train FEATURES --features FEATURES`)
        options = {shown(a) for a in parser._actions if a.option_strings and a.nargs != 0}
        options |= {flag.lstrip("-").replace("-", "_").upper() for a in parser._actions for flag in a.option_strings}
        twice.extend(
            f"{command} {shown(a)}"
            for a in parser._actions
            if not a.option_strings
            and not isinstance(a, argparse._SubParsersAction)
            and (shown(a) in options or a.dest.upper() in options)
        )

    walk(build_parser(), "vemoclap")
    assert not silent, f"options without help: {', '.join(silent)}"
    assert not twice, f"arguments named like an option: {', '.join(twice)}"


@pytest.mark.slow
def test_what_the_suite_loads_writes_only_inside_its_own_folders(tmp_path):
    """The libraries the tests load (ultralytics, transformers/torch, onnxruntime through rapidocr)
    write nothing into the home folder or the system temp folder under the suite's settings
    (tests/conftest.py): run with an empty HOME and TMPDIR, both stay empty."""
    import os
    import subprocess
    import sys

    home, temp = tmp_path / "home", tmp_path / "temp"
    home.mkdir()
    temp.mkdir()
    code = "\n".join(
        [
            "import ultralytics",
            "from transformers import CLIPModel",
            "from pathlib import Path",
            "import onnxruntime, rapidocr",
            "model = next(Path(rapidocr.__file__).parent.rglob('*.onnx'))",
            "onnxruntime.InferenceSession(str(model), providers=['CPUExecutionProvider'])",
        ]
    )
    env = dict(os.environ, HOME=str(home), TMPDIR=str(temp))
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p not in (home, temp))
    assert written == [], written


def _laid_out() -> set[str]:
    """The paths the README's "How the code is laid out" section names under vemoclap/."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"## How the code is laid out\n(.*?)\n## |\Z", text + "\n## ", re.S)
    assert section, "README has a 'How the code is laid out' section"
    named = set()
    for row in re.findall(r"^\| (.*?) \|", section.group(1), re.M):
        cells = re.findall(r"`([^`]+)`", row)
        base = ""
        for cell in cells:
            if cell.startswith("vemoclap/"):
                base = cell.rsplit("/", 1)[0] + "/" if not cell.endswith("/") else "vemoclap/"
                named.add(cell.rstrip("/"))
            elif base:
                named.add(base + cell.rstrip("/"))
    return named


def test_the_readme_lays_out_every_package_and_top_level_module():
    tree = {
        f"vemoclap/{p.name}" if p.is_dir() else f"vemoclap/{p.name}"
        for p in (ROOT / "vemoclap").iterdir()
        if (p.is_dir() and p.name != "__pycache__") or (p.suffix == ".py" and p.name != "__init__.py")
    }
    named = _laid_out()
    assert tree - named == set(), "in the tree, not in the README"
    assert {n for n in named if n.startswith("vemoclap/")} - tree == set(), "in the README, not in the tree"
