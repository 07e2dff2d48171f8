"""The model table, the default (reference) classifier, random-weight labels and offline failures —
through the real loaders on tiny models; no download here (see test_downloads.py for those)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from vemoclap import models
from vemoclap.labels import EMOTIONS
from vemoclap.pipeline import Analyzer
from vemoclap.results import NO_CLASSIFIER, Result


def _cli(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "vemoclap.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _said(run) -> list[str]:
    """stderr without the log's WARNING lines (the deviations are said in the report, not there)."""
    return [line for line in run.stderr.strip().splitlines() if not line.startswith("WARNING ")]


def test_tiny_models_dir_holds_the_reference_classifier_marked_random(tiny_models):
    folder = models.local_path("classifier", tiny_models)
    assert folder == tiny_models / "reference" / "weights" / "classifier"
    assert {p.name for p in folder.iterdir()} >= {"model.pt", "model_config.pt"}
    assert models.is_random(folder)
    assert models.is_random(tiny_models / "openai" / "clip-vit-base-patch32")
    assert models.origin(tiny_models / "whisper" / "small.pt") == models.RANDOM


def test_default_classifier_is_the_reference_and_random_weights_say_so(tiny_models, short_video):
    analyzer = Analyzer(["clip"], models_dir=tiny_models, device="cpu")  # no classifier named
    assert analyzer.classifier is not None and analyzer.classifier_name.startswith("reference")
    assert analyzer.recipe.name == "reference"  # the reference classifier's recipe
    assert analyzer.classifier.config.training["source"] == "reference"  # loaded from the reference layout
    result = analyzer.analyze(short_video)
    assert result.top_label in EMOTIONS and np.isclose(result.probabilities.sum(), 1.0)
    assert set(result.random_weights) == {"clip", "classifier"}
    summary = result.summary().splitlines()
    assert "RANDOM WEIGHTS" in summary[1]  # said before anything else
    data = json.loads(result.to_json())
    assert data["random_weights"] == ["clip", "classifier"]
    assert data["weights"]["clip"][0]["origin"] == "random"
    assert Result.from_json(result.to_json()).random_weights == result.random_weights


def test_classifier_none_gives_extractor_outputs_only(tiny_models, short_video):
    result = Analyzer(["clip"], models_dir=tiny_models, device="cpu", classifier=None).analyze(short_video)
    assert result.probabilities is None and NO_CLASSIFIER in result.warnings
    assert result.random_weights == ["clip"]


def test_weights_of_a_plain_folder_are_not_called_random(tmp_path, tiny_models, short_video):
    import shutil

    plain = tmp_path / "models"
    shutil.copytree(tiny_models / "openai", plain / "openai")
    (plain / "openai" / "clip-vit-base-patch32" / models.PROVENANCE).unlink()
    result = Analyzer(["clip"], models_dir=plain, device="cpu", classifier=None).analyze(short_video)
    assert result.random_weights == [] and result.weights["clip"][0]["origin"] == "local"
    assert "RANDOM" not in result.summary()


@pytest.mark.slow
def test_models_command_lists_classifier_with_licence_and_users(tiny_models):
    run = _cli("models", "--models-dir", tiny_models)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    header = lines[1]
    rows = {line.split()[0]: line for line in lines[2:] if line.strip()}
    assert "GPL-3.0" in rows["classifier"] and "fusion" in rows["classifier"]
    assert "random weights" in rows["classifier"]
    assert "AGPL-3.0" in rows["yolo_face"] and "face_emotion" in rows["yolo_face"]
    assert "CC-BY-NC-4.0" in rows["translation"] and "MIT" in rows["whisper"]
    assert "asr_sentiment, ocr_sentiment" in rows["sentiment"] and "unknown" in rows["sentiment"]
    assert "whisper/small.pt" in rows["whisper"] and "{name}" not in run.stdout
    assert "asr_sentiment" in rows["whisper_ct2"]  # the faster backend analyze loads where it is installed
    # sizes per variant: on a CPU the default run uses Whisper small
    assert " 461 MiB" in rows["whisper"] and " 463 MiB" in rows["whisper_ct2"] and "1,457" not in rows["whisper"]
    for key in models.MODELS:
        assert key in rows
        for column in ("licence", "used by", "default", "state", "source"):  # every column starts where its header does
            at = header.index(column)
            assert rows[key][at - 1] == " " and rows[key][at] != " " or rows[key][at : at + 3] == "   ", (key, column)
    default = header.index("default")
    assert rows["classifier"][default : default + 3] == "yes" and rows["samples"][default : default + 3] == "   "
    assert rows["gpt2"][default : default + 3] == "   "
    assert "MiB on disk" in run.stdout and "non-commercial" in run.stdout
    medium = _cli("models", "--models-dir", tiny_models, "--whisper", "medium")
    assert "1,457 MiB" in next(line for line in medium.stdout.splitlines() if line.startswith("whisper "))


# The openai-whisper checkpoints (the files behind whisper._MODELS), MiB.
WHISPER_CHECKPOINTS_MIB = {"tiny": 72, "base": 139, "small": 461, "medium": 1457, "large-v3": 2940}


def test_the_table_gives_each_whisper_variant_its_own_size():
    import whisper

    for name, mib in WHISPER_CHECKPOINTS_MIB.items():
        assert models.size_mib("whisper", name) == mib
        assert abs(models.size_mib("whisper_ct2", name) / mib - 1) < 0.05  # CTranslate2 folders: about the same
    assert models.size_mib("whisper", "large") == 2940 and models.size_mib("whisper", "small.en") == 461
    variants = dict(models.MODELS["whisper"].variants_mib)
    assert all(name.removesuffix(".en") in variants for name in whisper.available_models())
    assert models.size_mib("whisper") == 461  # the default variant (small), from the MB column


def test_the_default_run_needs_one_whisper_and_the_classifier_and_says_its_cost(tiny_models, tmp_path):
    from vemoclap.needs import default_cost

    there = default_cost(tiny_models, device="cpu")
    assert there.device == "cpu" and there.recipe.startswith("reference")
    assert there.wanted[0] == ("classifier", None)
    asr = [(key, name) for key, name in there.wanted if key in ("whisper", "whisper_ct2")]
    assert len(asr) == 1 and asr[0][1] == "small"  # on a CPU: small, one backend, not four copies
    assert not {"ast", "samples", "gpt2", "clipcap"} & {key for key, _ in there.wanted}
    # the tiny models dir has no English PP-OCR pair (the bundled OCR models run, as a named deviation)
    english_ocr = {("ppocr_en_det", None), ("ppocr_en_rec", None)}
    assert english_ocr <= set(there.wanted) and set(there.missing) == english_ocr
    assert there.download_mib == sum(models.size_mib(key, name) for key, name in english_ocr)
    assert there.disk_mib == sum(models.size_mib(key, name) for key, name in there.wanted)
    empty = default_cost(tmp_path, device="cpu")
    assert empty.wanted == there.wanted and empty.download_mib == empty.disk_mib == there.disk_mib
    assert f"{empty.disk_mib:,} MiB to download ({len(empty.wanted)} missing)" in empty.line()


def test_readme_states_the_costs_the_table_gives(tmp_path):
    from pathlib import Path

    from vemoclap.needs import default_cost

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    cpu = default_cost(tmp_path, device="cpu")
    asr, small = next((key, name) for key, name in cpu.wanted if key in ("whisper", "whisper_ct2"))
    gpu = cpu.disk_mib - models.size_mib(asr, small) + models.size_mib(asr, "large-v3")
    assert f"{cpu.disk_mib:,} MiB" in readme and f"{gpu:,} MiB" in readme


@pytest.mark.slow
def test_demo_keeps_library_chatter_out_and_says_the_deviations_once(tiny_models):
    run = _cli("demo", "--models-dir", tiny_models, "--frames", "4", "-q")
    assert run.returncode == 0, run.stderr[-2000:]
    foreign = [line for line in run.stderr.splitlines() if line.strip() and "vemoclap" not in line]
    assert foreign == [] and "[ERROR]" not in run.stderr and "Glyph" not in run.stderr
    assert not run.stdout.startswith("\n")  # no blank lines before the report
    said = run.stdout + run.stderr
    assert said.count("asr_sentiment.whisper_model") == 1 and "deviation(s):" in run.stdout  # once, in the report


def test_muting_a_library_keeps_its_own_handler_quiet_and_its_words_in_our_log(caplog):
    import io
    import logging

    from vemoclap.quiet import _to_debug, mute_libraries

    out = io.StringIO()
    library = logging.getLogger("RapidOCR")  # rapidocr's logger: its own coloured handler, not propagated
    handler = logging.StreamHandler(out)
    library.addHandler(handler)
    saved = list(library.filters)
    library.filters[:] = [f for f in saved if f is not _to_debug]  # as before any command muted it
    try:
        library.error("before")
        assert "before" in out.getvalue()
        mute_libraries()
        library.setLevel(logging.INFO)  # what rapidocr does when it is imported
        with caplog.at_level(logging.DEBUG, logger="vemoclap.quiet"):
            library.error("[ERROR] after")
        assert "after" not in out.getvalue()
        assert any("RapidOCR: [ERROR] after" in r.getMessage() for r in caplog.records)
    finally:
        library.removeHandler(handler)
        library.filters[:] = saved


def test_table_reads_a_downloaded_licence_from_provenance(tmp_path):
    folder = models.target_path("sentiment", tmp_path)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    models.write_provenance(folder, {"origin": "download", "license": "cc-by-4.0"})
    row = next(r for r in models.table(tmp_path) if r["key"] == "sentiment")
    assert row["license"] == "cc-by-4.0" and row["origin"] == "download"


@pytest.mark.slow
@pytest.mark.parametrize(
    "env",
    [{"VEMOCLAP_OFFLINE": "1"}, {"VEMOCLAP_OFFLINE": "0", "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}],
    ids=["offline-setting", "no-network"],
)
def test_offline_analyze_fails_fast_with_one_line_per_model(tmp_path, env):
    started = time.perf_counter()
    run = _cli("analyze", "sample", "--models-dir", tmp_path / "empty", "-q", env=env, timeout=120)
    seconds = time.perf_counter() - started
    assert run.returncode == 2, run.stderr
    lines = _said(run)
    assert all(line.startswith("vemoclap: ") for line in lines) and "Traceback" not in run.stderr
    named = [line for line in lines if line.startswith("vemoclap: model '")]
    keys = {line.split("'")[1] for line in named}
    assert {"classifier", "clip", "beats", "face_expression", "sentiment"} <= keys
    assert keys & {"whisper", "whisper_ct2"}  # the backend that would run (faster-whisper where installed)
    assert len(named) == len(keys)  # one line per model, no repeats
    fix = lines[-1]
    assert "vemoclap download-models --only classifier," in fix and f"--dir {tmp_path / 'empty'}" in fix
    assert "vemoclap demo" in fix
    assert seconds < 60  # not ~50 s of hub retries per model (loose: the machine is shared)


def _no_network(endpoint: str) -> dict[str, str]:
    """Every download host pointed at ``endpoint`` (a closed port, or a name that does not resolve)."""
    return {
        "VEMOCLAP_OFFLINE": "0",
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": endpoint,
        "VEMOCLAP_REFERENCE_BASE_URL": endpoint + "/ref/",
        "VEMOCLAP_WHISPER_BASE_URL": endpoint + "/whisper/",
    }


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9", "http://vemoclap-no-such-host.invalid"], ids=["port", "name"]
)
def test_no_connection_is_said_once_as_offline_within_seconds(tmp_path, endpoint):
    started = time.perf_counter()
    run = _cli("analyze", "sample:joy", "--models-dir", tmp_path / "empty", env=_no_network(endpoint), timeout=120)
    seconds = time.perf_counter() - started
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("vemoclap: ") == 1 and "Traceback" not in run.stderr
    line = _said(run)[0]
    assert line.startswith("vemoclap: offline") and "interrupted" not in line
    assert "`vemoclap demo`" in line and "vemoclap download-models" in line
    assert endpoint.split("//")[1] in line  # the host that did not answer
    assert seconds < 5


def test_each_missing_model_names_the_host_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.setenv("VEMOCLAP_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("VEMOCLAP_REFERENCE_BASE_URL", "http://reference-host.invalid/repo/")
    needs = [models.Need("classifier"), models.Need("clip", user="clip")]
    with pytest.raises(models.MissingModels) as caught:
        models.fetch_needed(needs, tmp_path)
    lines = {line.split("'")[1]: line for line in caught.value.lines if line.startswith("model '")}
    assert "no connection to reference-host.invalid" in lines["classifier"] and "127.0.0.1" not in lines["classifier"]
    assert "no connection to 127.0.0.1:9" in lines["clip"]
    assert "huggingface.co" not in str(caught.value)
    assert (
        "vemoclap demo" in caught.value.lines[-1] and "download-models --only classifier,clip" in caught.value.lines[-1]
    )


def test_download_models_offline_is_one_line_naming_the_demo(tmp_path):
    run = _cli("download-models", "--dir", tmp_path, "--only", "clip", "-q", env=_no_network("http://127.0.0.1:9"))
    assert run.returncode == 2, run.stderr
    assert _said(run) == [line for line in run.stderr.splitlines() if line.strip()]
    assert len(_said(run)) == 1 and "offline: no connection to 127.0.0.1:9" in run.stderr
    assert "vemoclap demo" in run.stderr and "interrupted" not in run.stderr


def test_skip_unavailable_offline_lists_each_extractor_with_its_fix(tmp_path, tiny_models, short_video):
    import shutil

    partial = tmp_path / "models"
    shutil.copytree(tiny_models / "reference", partial / "reference")
    shutil.copytree(tiny_models / "openai", partial / "openai")
    analyzer = Analyzer(["clip", "beats"], models_dir=partial, device="cpu", skip_unavailable=True)
    result = analyzer.analyze(short_video)
    assert "clip" in result.outputs and "beats" not in result.outputs
    assert "beats" in result.missing and "download-models --only beats" in result.missing["beats"]
    assert result.has_prediction


def test_unknown_sample_is_one_line(tiny_models):
    run = _cli("analyze", "sample:laughter", "--models-dir", tiny_models, "--extractors", "clip", "-q")
    assert run.returncode == 2
    assert "sample:joy" in run.stderr and len(_said(run)) == 1


def test_reference_sample_offline_says_how_to_fetch_it(tiny_models):
    run = _cli("analyze", "sample:joy", "--models-dir", tiny_models, "--extractors", "clip", "-q")
    assert run.returncode == 2 and "download-models --only samples" in run.stderr
    assert len(_said(run)) == 1


@pytest.mark.slow
def test_demo_command_runs_offline_and_says_random(tmp_path):
    run = _cli(
        "demo",
        "--models-dir",
        tmp_path / "tiny",
        "--frames",
        "4",
        "-q",
        "--json",
        tmp_path / "r.json",
        env={"VEMOCLAP_CACHE": str(tmp_path / "cache")},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "RANDOM WEIGHTS" in run.stdout and "emotion:" in run.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert "classifier" in data["random_weights"] and data["top_label"] in EMOTIONS
    assert (tmp_path / "tiny" / ".complete").is_file()


@pytest.fixture
def throwaway_row():
    """A model row added at run time (as a new extractor's module would), removed afterwards."""
    row = models.register(
        models.ModelRef(
            "throwaway_audio",
            "hf",
            hub_id="acme/throwaway-audio-emotion",
            purpose="an audio emotion model registered by a test",
            size_mb=7,
            license="MIT",
        )
    )
    yield row
    del models.MODELS[row.key]


def test_a_row_registered_at_run_time_is_listed_and_planned(throwaway_row, tmp_path, capsys):
    from vemoclap.cli import main

    assert main(["models", "--models-dir", str(tmp_path)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("throwaway_audio ")]
    assert len(listed) == 1 and "acme/throwaway-audio-emotion" in listed[0] and "not local" in listed[0]

    assert "throwaway_audio" in models.default_downloads()
    plan = models.fetch.missing(models.default_downloads(), tmp_path)
    assert "throwaway_audio" in [item.key for item in plan]
    assert "throwaway_audio" in models.fetch.describe_plan(plan)
    with pytest.raises(models.ModelUnavailable, match="throwaway_audio"):  # the suite runs offline
        models.download_models(tmp_path, progress=False)
    # once there, it is local: the same lookup every loader uses
    folder = models.target_path("throwaway_audio", tmp_path)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert models.local_path("throwaway_audio", tmp_path) == folder
    assert "throwaway_audio" not in [item.key for item in models.fetch.missing(["throwaway_audio"], tmp_path)]


def test_a_row_fetched_only_when_asked_stays_out_of_the_default_downloads(tmp_path):
    row = models.register(models.ModelRef("throwaway_extra", "file", url="http://127.0.0.1:9/x.pt", filename="x.pt"))
    try:
        assert "throwaway_extra" in models.default_downloads()
        models.MODELS[row.key] = dataclasses.replace(row, fetched_by_default=False)
        assert "throwaway_extra" not in models.default_downloads()
        assert [item.key for item in models.fetch.missing(["throwaway_extra"], tmp_path)] == ["throwaway_extra"]
        with pytest.raises(ValueError, match="taken"):
            models.register(row)  # a key names one row
    finally:
        del models.MODELS[row.key]


def test_default_downloads_are_every_model_but_the_samples_ast_and_the_clipcap_pair():
    chosen = models.default_downloads()
    assert {"classifier", "clip", "beats", "face_expression", "yolo_face", "whisper", "whisper_ct2"} <= set(chosen)
    assert {"sentiment", "language_id", "translation", "spell", "caption"} <= set(chosen)
    assert not {"samples", "ast", "gpt2", "clipcap"} & set(chosen)


@pytest.mark.slow
def test_demo_runs_on_the_models_extra_alone(tmp_path):
    """Without the fast-asr extra (no ctranslate2, no faster-whisper) the demo builds no faster-whisper
    models and the ASR runs on openai-whisper: `[models]` is enough for a user."""
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nfor name in ('ctranslate2', 'faster_whisper'):\n    sys.modules[name] = None\n"
    )
    run = _cli(
        "demo",
        "--models-dir",
        tmp_path / "tiny",
        "--frames",
        "4",
        "-q",
        "--json",
        tmp_path / "r.json",
        env={"VEMOCLAP_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(blocker)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert not (tmp_path / "tiny" / "whisper-ct2").exists()
    data = json.loads((tmp_path / "r.json").read_text())
    assert "asr_sentiment" in data["outputs"] and data["top_label"] in EMOTIONS


def test_a_reader_that_leaves_early_is_not_an_internal_error(tiny_models):
    # `vemoclap models | head -1`, made certain: the pipe's read end is closed before anything is written
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "vemoclap.cli", "models", "--models-dir", str(tiny_models)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
        )
    finally:
        os.close(write_end)
    assert run.returncode == 141 and run.stderr.strip() == "", run.stderr
