"""``vemoclap predict`` end to end on generated videos and tiny models of the real classes: one row
per video with the classifier's probabilities, failed videos as rows with a reason, resume after a
rerun, a deleted row or a kill, CSV input, and the checks that run before any work."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vemoclap.labels import EMOTIONS
from vemoclap.prediction import PredictionError, predict, read_predictions

ROOT = Path(__file__).resolve().parents[1]
EXTRACTORS = ["clip", "beats", "face_emotion"]
OPTIONS = dict(extractors=EXTRACTORS, frames=4, device="cpu", face_detector="opencv")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Model key → path, plus "dir": the models folder."""
    from vemoclap.tiny import make_tiny_models

    directory = tmp_path_factory.mktemp("models")
    return {**make_tiny_models(directory), "dir": directory}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three short videos (one in a subfolder) and one .mp4 that is not a video."""
    from vemoclap.synth import make_video
    from vemoclap.testing.media import write_text_file

    root = tmp_path_factory.mktemp("videos")
    make_video(root / "a tone.mp4", duration=3.5, fps=8, size=(96, 64), audio="tone")
    make_video(root / "b speech.mp4", duration=3.0, fps=8, size=(96, 64), audio="speech")
    make_video(root / "more" / "c silent.mp4", duration=2.0, fps=8, size=(96, 64), audio=None)
    write_text_file(root / "garbage.mp4")
    return root


@pytest.fixture(scope="module")
def analyzer(models):
    from vemoclap.pipeline import Analyzer

    return Analyzer(models_dir=models["dir"], classifier=models["classifier"], **OPTIONS).load()


def _cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "vemoclap.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _cli_options(models) -> list[str]:
    return [
        "--classifier",
        models["classifier"],
        "--models-dir",
        models["dir"],
        "--extractors",
        ",".join(EXTRACTORS),
        "--frames",
        "4",
        "--device",
        "cpu",
        "--face-detector",
        "opencv",
        "-q",
    ]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_cli_one_row_per_video_failures_and_rerun(models, folder, analyzer, tmp_path):
    out = tmp_path / "predictions.csv"
    run = _cli("predict", folder, "--out", out, *_cli_options(models))
    assert run.returncode == 1, run.stderr  # a video failed: the run finished, and says so
    assert "Traceback" not in run.stderr
    failed_lines = [line for line in run.stderr.splitlines() if "garbage.mp4" in line]
    assert len(failed_lines) == 1 and "failed" in failed_lines[0] and "skipped when run again" in failed_lines[0]
    assert "emotions of 3/4 videos" in run.stdout and "1 bad input" in run.stdout and "--retry-failed" in run.stdout

    rows = read_predictions(out)
    expected = sorted(str(p) for p in folder.rglob("*.mp4"))  # the listing's order: sorted paths
    assert [row["source"] for row in rows] == expected
    by_name = {Path(row["source"]).name: row for row in rows}
    bad = by_name.pop("garbage.mp4")
    assert bad["status"] == "bad_input" and bad["top_label"] == "" and bad["anger"] is None
    assert "garbage.mp4" in bad["reason"] and "\n" not in bad["reason"]
    with open(out, newline="") as handle:
        header = next(csv.reader(handle))
    assert header[4:10] == list(EMOTIONS)
    for name, row in by_name.items():
        probabilities = np.array([row[label] for label in EMOTIONS])
        assert row["status"] == "ok" and row["reason"] == ""
        assert abs(probabilities.sum() - 1) < 1e-4 and np.all(probabilities >= 0)
        assert row["top_label"] == EMOTIONS[int(np.argmax(probabilities))]
        assert row["top_probability"] == pytest.approx(probabilities.max(), abs=1e-6)
        assert row["classifier"] == str(models["classifier"].resolve())
        assert row["random_weights"].startswith("yes (") and "classifier" in row["random_weights"]  # tiny models
        # the classifier sees no transcript or OCR features here: the row says so
        assert "asr_sentiment" in row["missing"] and "zeros" in row["missing"]
        # the very numbers `analyze` gives for this video
        direct = analyzer.analyze(row["source"])
        np.testing.assert_allclose(probabilities, direct.probabilities, atol=2e-6, err_msg=name)
    assert "beats" in by_name["c silent.mp4"]["missing"]  # no audio track

    # A rerun skips the file that is not a video (bad input), and says so: every row stays byte for byte.
    before = _lines(out)
    again = _cli("predict", folder, "--out", out, *_cli_options(models))
    assert again.returncode == 1 and "emotions of 3/4 videos" in again.stdout and "1 bad input" in again.stdout
    assert "0 analyzed" in again.stdout and "3 already there" in again.stdout
    assert _lines(out) == before
    # --retry-failed analyzes it again (and it is still not a video); the other rows stay byte for byte
    retried = _cli("predict", folder, "--out", out, "--retry-failed", *_cli_options(models))
    assert retried.returncode == 1 and "garbage.mp4" in retried.stderr and "1 bad input" in retried.stdout
    after = _lines(out)
    assert len(after) == len(before) and [line for line in after if "garbage.mp4" not in line] == [
        line for line in before if "garbage.mp4" not in line
    ]


@pytest.mark.slow
def test_rerun_redoes_a_deleted_row_and_keeps_the_rest(models, folder, analyzer, tmp_path, monkeypatch):
    out = tmp_path / "p.csv"
    first = predict(folder, out, analyzer=analyzer, progress=False)
    assert (first.total, first.predicted, first.skipped, len(first.failed), len(first.bad_input)) == (4, 3, 0, 0, 1)
    assert sum(first.top_labels.values()) == 3
    lines = _lines(out)
    deleted = next(line for line in lines if "b speech.mp4" in line)
    out.write_text("\n".join(line for line in lines if line != deleted) + "\n", encoding="utf-8")

    analyzed: list[str] = []
    real = analyzer.analyze
    monkeypatch.setattr(
        analyzer, "analyze", lambda source, **kw: analyzed.append(Path(source).name) or real(source, **kw)
    )
    second = predict(folder, out, analyzer=analyzer, progress=False)
    assert analyzed == ["b speech.mp4"]  # the deleted row; not the file that is not a video
    assert (second.predicted, second.skipped, list(second.bad_input)) == (1, 2, [str(folder / "garbage.mp4")])
    redone = _lines(out)
    assert len(redone) == len(lines)
    for old, new in zip(lines, redone):  # same order; only the redone row may differ (its timing)
        if old == deleted:
            assert new.split(",")[:10] == old.split(",")[:10]  # deterministic: the same probabilities
        else:
            assert new == old
    analyzed.clear()
    third = predict(folder, out, analyzer=analyzer, progress=False, retry_failed=True)
    assert analyzed == ["garbage.mp4"] and (third.predicted, third.skipped, len(third.bad_input)) == (0, 3, 1)


@pytest.mark.slow
def test_a_killed_run_loses_at_most_the_video_it_was_on(models, folder, tmp_path):
    out = tmp_path / "killed.csv"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vemoclap.cli",
            "predict",
            str(folder),
            "--out",
            str(out),
            *map(str, _cli_options(models)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    try:
        while not (out.is_file() and len(_lines(out)) >= 2):  # the header and one finished video
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no row appeared"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    kept = read_predictions(out)
    assert 1 <= len(kept) < 4 and all(row["status"] in ("ok", "bad_input") for row in kept)
    with open(out, "a", encoding="utf-8") as handle:  # what a kill in the middle of a line would leave
        handle.write(f"{folder / 'x.mp4'},ok,jo")

    run = _cli("predict", folder, "--out", out, *_cli_options(models))
    assert run.returncode == 1, run.stderr
    assert f"{sum(row['status'] == 'ok' for row in kept)} already there" in run.stdout
    rows = read_predictions(out)
    assert [row["source"] for row in rows] == sorted(str(p) for p in folder.rglob("*.mp4"))
    assert [row["status"] for row in rows].count("ok") == 3


@pytest.mark.slow
def test_csv_input_with_a_missing_file(models, folder, analyzer, tmp_path):
    listing = tmp_path / "list.csv"
    with open(listing, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerow([os.path.relpath(folder / "a tone.mp4", tmp_path), "joy"])  # relative to the CSV
        writer.writerow([str(folder / "more" / "c silent.mp4"), "fear"])
        writer.writerow(["gone.mp4", "anger"])
    report = predict(listing, tmp_path / "out" / "p.csv", analyzer=analyzer, progress=False)
    rows = read_predictions(tmp_path / "out" / "p.csv")
    assert [Path(row["source"]).name for row in rows] == ["a tone.mp4", "c silent.mp4", "gone.mp4"]
    assert [row["status"] for row in rows] == ["ok", "ok", "failed"]
    assert "gone.mp4" in rows[2]["reason"] and "no such file" in rows[2]["reason"]
    assert (report.predicted, list(report.failed)) == (2, [str(tmp_path / "gone.mp4")])


def test_checks_before_any_work(models, folder, analyzer, tmp_path):
    # --out is a folder: a one-line reason, exit 2, before any model loads
    run = _cli("predict", folder, "--out", tmp_path, *_cli_options(models))
    assert run.returncode == 2 and "--out" in run.stderr and len(run.stderr.strip().splitlines()) == 1

    with pytest.raises(PredictionError, match="needs an emotion classifier"):
        predict(folder, tmp_path / "p.csv", classifier=None, models_dir=models["dir"], **OPTIONS)

    other = tmp_path / "other.csv"  # some other CSV is never overwritten
    other.write_text("name,score\nx,1\n")
    with pytest.raises(PredictionError, match="not a predictions file"):
        predict(folder, other, analyzer=analyzer, progress=False)
    assert other.read_text() == "name,score\nx,1\n"

    mixed = tmp_path / "mixed.csv"  # rows of another classifier are not mixed with this one's
    predict([folder / "a tone.mp4"], mixed, analyzer=analyzer, progress=False)
    text = mixed.read_text().replace(str(models["classifier"].resolve()), "/elsewhere/classifier")
    mixed.write_text(text)
    with pytest.raises(PredictionError, match="another classifier"):
        predict(folder, mixed, analyzer=analyzer, progress=False)
    assert mixed.read_text() == text


def test_why_columns_say_what_each_input_gave_the_top_label(models, folder, analyzer, tmp_path):
    out = tmp_path / "why.csv"
    predict([folder / "a tone.mp4"], out, analyzer=analyzer, progress=False)
    with open(out, newline="") as handle:
        header = next(csv.reader(handle))
    features = analyzer.classifier.config.features
    assert header[-1 - len(features) :] == ["why", *(f"pts_{name}" for name in features)]
    [row] = read_predictions(out)
    direct = analyzer.analyze(row["source"]).explanation
    assert row["why"] == direct.sentence() and row["why"].startswith(f"{row['top_label']}, ")
    for name, points in direct.toward(row["top_label"]).items():
        assert row[f"pts_{name}"] == pytest.approx(points, abs=1e-3)
    assert row["pts_asr_sentiment"] == 0.0 and row["pts_ocr_sentiment"] == 0.0  # not extracted here: missing
    assert any(row[f"pts_{name}"] != 0.0 for name in EXTRACTORS)
