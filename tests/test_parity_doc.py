"""docs/parity.md tells the truth: 45 rules numbered 1..45, each with a status of same / differs /
unknown; every "same" row names the test that shows it; every test id the document cites exists;
every vemoclap file:line it cites lies inside an existing file and names what is there (the function,
class or module-level name that holds the line, or a name on the cited lines), so a citation that
drifts is caught (scripts/parity_citations.py --since REV moves them along a change); the tally
matches the rows. A mutated copy of the document shows that each check can fail."""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "parity.md"
N_RULES = 45
STATUSES = ("same", "differs", "unknown")
HEADER = ["#", "rule", "the reference", "vemoclap", "status", "shown by"]

TEST_ID = re.compile(r"(tests/[\w/]+\.py)::([\w:]+)(?:\[[^\]]*\])?")
# a file:line (or file:first-last) of this tree, optionally followed by " (`identifier`" naming what is there
CITATION = re.compile(r"(vemoclap/[\w/]+\.py):(\d+)(?:-(\d+))?`?(?: \(`(\w+)`)?")
TALLY = re.compile(r"^Tally: same (\d+), differs (\d+), unknown (\d+)\.$", re.M)


@dataclass(frozen=True)
class Row:
    number: str
    rule: str
    reference: str
    vemoclap: str
    status: str
    shown_by: str

    @property
    def kind(self) -> str:
        return re.split(r"[\s:(]", self.status.strip(), maxsplit=1)[0]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_table(text: str) -> list[Row]:
    """The rows of the document's rule table (the one whose header is HEADER)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|") and _cells(line) == HEADER), None)
    if start is None:
        return []
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        rows.append(Row(*cells) if len(cells) == len(HEADER) else Row("?" + line[:40], "", "", "", "", ""))
    return rows


@lru_cache(maxsize=None)
def _holders(path: Path) -> tuple[tuple[int, int, str], ...]:
    """(first line, last line, name) of each def, class and module-level assignment of a file."""
    tree = ast.parse(path.read_text())
    found = [
        (node.lineno, node.end_lineno or node.lineno, node.name)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    for node in tree.body:
        for target in [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", []):
            if isinstance(target, ast.Name):
                found.append((node.lineno, node.end_lineno or node.lineno, target.id))
    return tuple(found)


@lru_cache(maxsize=None)
def _test_names(path: str) -> frozenset[str]:
    """Test functions of one test file: module-level ``name`` and ``Class::name``, read with ast."""
    file = ROOT / path
    if not file.is_file():
        return frozenset()
    names = set()
    for node in ast.parse(file.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(f"{node.name}::{item.name}")
    return frozenset(names)


def _citation_problems(where: str, cell: str, root: Path) -> list[str]:
    problems = []
    for path, first, last, identifier in CITATION.findall(cell):
        file = root / path
        if not file.is_file():
            problems.append(f"{where}: cites {path}, which does not exist")
            continue
        lines = file.read_text().splitlines()
        end = int(last or first)
        if int(first) < 1 or end > len(lines) or int(first) > end:
            problems.append(
                f"{where}: cites {path}:{first}{'-' + last if last else ''}; the file has {len(lines)} lines"
            )
        elif not identifier:
            problems.append(f"{where}: cites {path}:{first} without naming what is there (scripts/parity_citations.py)")
        elif not (
            any(a <= int(first) <= b and name == identifier for a, b, name in _holders(file))
            or any(re.search(rf"\b{identifier}\b", line) for line in lines[int(first) - 1 : end + 2])
        ):
            problems.append(f"{where}: cites {path}:{first} for `{identifier}`, which is not there")
    return problems


def problems(text: str, root: Path = ROOT) -> list[str]:
    """Every way the document fails its promises (empty when it keeps them)."""
    rows = parse_table(text)
    found = []
    numbers = [row.number for row in rows]
    if numbers != [str(n) for n in range(1, N_RULES + 1)]:
        found.append(f"the table's rows are numbered {numbers}, not 1..{N_RULES}")
    for row in rows:
        where = f"rule {row.number}"
        if row.kind not in STATUSES:
            found.append(f"{where}: status '{row.status}' is not one of {', '.join(STATUSES)}")
        if row.kind in ("differs", "unknown") and len(row.status) <= len(row.kind) + 2:
            found.append(f"{where}: '{row.kind}' without why or what settles it")
        if row.kind == "same" and not TEST_ID.search(row.shown_by):
            found.append(f"{where}: 'same' with no test id in 'shown by'")
        if not CITATION.search(row.vemoclap):
            found.append(f"{where}: no vemoclap file:line")
        found += _citation_problems(where, row.vemoclap, root)
    for path, name in TEST_ID.findall(text):
        if name not in _test_names(path):
            found.append(f"cites {path}::{name}, which is not a test there")
    tally = TALLY.search(text)
    counts = tuple(sum(row.kind == kind for row in rows) for kind in STATUSES)
    if not tally or tuple(map(int, tally.groups())) != counts:
        found.append(f"the tally line does not say same {counts[0]}, differs {counts[1]}, unknown {counts[2]}")
    return found


def test_the_parity_table_tells_the_truth():
    assert problems(DOC.read_text()) == []


def test_quirks_followed_under_reference_are_said_so():
    rows = {row.number: row for row in parse_table(DOC.read_text())}
    for number in ("1", "26"):  # 15 frames and a zero row; red and blue swapped for the OCR engine
        assert "quirk" in rows[number].status and "`reference`" in rows[number].status


def _line(row: Row) -> str:
    return "| " + " | ".join(getattr(row, name) for name in Row.__dataclass_fields__) + " |"


def _replace_row(text: str, number: int, column: str, new: str) -> str:
    """The document with one cell of rule ``number`` replaced by ``new``."""
    row = parse_table(text)[number - 1]
    assert _line(row) in text
    return text.replace(_line(row), _line(dataclasses.replace(row, **{column: new})))


MUTATIONS = {
    "a row dropped": (lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("| 7 |")), "numbered"),
    "a bad status": (lambda t: _replace_row(t, 6, "status", "probably same"), "is not one of"),
    "same without a test": (lambda t: _replace_row(t, 6, "shown_by", "a reviewer said so"), "no test id"),
    "differs without why": (lambda t: _replace_row(t, 13, "status", "differs"), "without why"),
    "a test that does not exist": (
        lambda t: t.replace("::test_reference_frame_sizes_truncate", "::test_reference_frame_sizes_are_exact"),
        "test_reference_frame_sizes_are_exact",
    ),
    "a test file that does not exist": (
        lambda t: t.replace("tests/test_fusion.py::", "tests/test_fusion_gone.py::", 1),
        "test_fusion_gone.py",
    ),
    "a line past the end of the file": (
        lambda t: re.sub(r"vemoclap/extractors/clip\.py:\d+", "vemoclap/extractors/clip.py:99999", t, count=1),
        "the file has",
    ),
    "a file that does not exist": (
        lambda t: t.replace("vemoclap/extractors/clip.py:", "vemoclap/extractors/clap.py:", 1),
        "does not exist",
    ),
    "an identifier moved away": (
        lambda t: re.sub(
            r"vemoclap/media\.py:\d+` \(`_output_size`", "vemoclap/media.py:1` (`_output_size`", t, count=1
        ),
        "not there",
    ),
    "a citation that names nothing": (
        lambda t: re.sub(r"(vemoclap/media\.py:\d+`) \(`_output_size`\)", r"\1", t, count=1),
        "without naming what is there",
    ),
    "a wrong tally": (lambda t: TALLY.sub("Tally: same 45, differs 0, unknown 0.", t), "tally"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_the_check_catches_a_mutated_table(mutation):
    text = DOC.read_text()
    mutate, expected = MUTATIONS[mutation]
    mutated = mutate(text)
    assert mutated != text, "the mutation found nothing to change: update it to the current document"
    found = problems(mutated)
    assert any(expected in problem for problem in found), found
