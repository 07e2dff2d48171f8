"""Keep docs/parity.md's citations of this tree true as the code moves.

    python scripts/parity_citations.py --name          # add the enclosing definition's name where none is given
    python scripts/parity_citations.py --since REV     # move every cited line along the changes since REV

Each citation is ``vemoclap/x.py:LINE`` (or ``:FIRST-LAST``) followed by `` (`name` ``: the function,
class or module-level name that holds those lines (tests/test_parity_doc.py checks it). ``--since``
maps each cited line through ``git diff REV`` of its file (difflib's matching blocks of the two
versions), so a citation follows its line when code above it is added or removed."""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "parity.md"
# path:first[-last]`, then optionally " (" and what the parentheses hold up to the first "," or ")"
CITATION = re.compile(r"(vemoclap/[\w/]+\.py):(\d+)(?:-(\d+))?`( \((`?)([^,)]*)([,)]))?")


def definitions(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, name) of every def, class and module-level assignment."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append((node.lineno, node.end_lineno or node.lineno, node.name))
    for node in tree.body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        for target in targets:
            if isinstance(target, ast.Name):
                found.append((node.lineno, node.end_lineno or node.lineno, target.id))
    return found


def enclosing(source: str, first: int, last: int) -> str | None:
    """The innermost definition whose lines hold ``first``..``last`` (else the one holding ``first``:
    a citation of two neighbouring constants names the first)."""
    for end in (last, first):
        spans = [(a, b, name) for a, b, name in definitions(source) if a <= first and end <= b]
        if spans:
            return min(spans, key=lambda s: s[1] - s[0])[2]
    return None


def add_names(text: str) -> str:
    def fill(match: re.Match) -> str:
        path, first, last, paren, tick, inside, end = match.groups()
        if paren is not None and re.match(r"`\w+`", tick + inside):  # a name is given
            return match.group(0)
        name = enclosing((ROOT / path).read_text(), int(first), int(last or first))
        if name is None:
            return match.group(0)
        cited = f"{path}:{first}{'-' + last if last else ''}`"
        if paren is None:
            return f"{cited} (`{name}`)"
        return f"{cited} (`{name}`, {tick}{inside}{end}"

    return CITATION.sub(fill, text)


def line_map(old: list[str], new: list[str]) -> dict[int, int]:
    """1-based old line → new line, for the lines difflib finds unchanged."""
    mapping = {}
    for block in difflib.SequenceMatcher(None, old, new, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            mapping[block.a + k + 1] = block.b + k + 1
    return mapping


def move_lines(text: str, since: str) -> tuple[str, list[str]]:
    maps: dict[str, dict[int, int]] = {}
    lost: list[str] = []

    def move(match: re.Match) -> str:
        path, first, last = match.group(1), int(match.group(2)), match.group(3)
        if path not in maps:
            old = subprocess.run(["git", "show", f"{since}:{path}"], cwd=ROOT, capture_output=True, text=True)
            new = (ROOT / path).read_text().splitlines()
            maps[path] = line_map(old.stdout.splitlines(), new) if old.returncode == 0 else {}
        mapping = maps[path]
        if first not in mapping or (last and int(last) not in mapping):
            lost.append(f"{path}:{first}{'-' + last if last else ''} (its line changed: check it by hand)")
            return match.group(0)
        span = f"{mapping[first]}{'-' + str(mapping[int(last)]) if last else ''}"
        return f"{path}:{span}`" + (match.group(4) or "")

    return CITATION.sub(move, text), lost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", action="store_true", help="name the enclosing definition where none is given")
    parser.add_argument("--since", metavar="REV", help="move cited lines along the changes since REV")
    args = parser.parse_args(argv)
    text = DOC.read_text()
    if args.since:
        text, lost = move_lines(text, args.since)
        for line in lost:
            print(line, file=sys.stderr)
    if args.name:
        text = add_names(text)
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
