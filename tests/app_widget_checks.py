"""Widget-level checks of the app that must hold under ipywidgets 8 (Jupyter, Voila) and 7.7.1
(Colab's own). test_app.py runs them in-process (ipywidgets 8) and, through this file's ``main``,
with another interpreter that has ipywidgets 7.7.1:

    python tests/app_widget_checks.py TINY_MODELS_DIR OUTPUT_DIR

(exit code 0 when every check passes; run from the repository root with it on PYTHONPATH).
"""

from __future__ import annotations

import datetime
import re
import sys
from pathlib import Path

PNG = b"\x89PNG\r\n\x1a\n"
FAST = {"face_detector": "opencv", "frames": 4}


def visible_text(markup: str) -> str:
    return re.sub(r"<[^>]+>", "", markup).strip()


def upload(app, name: str, content: bytes) -> None:
    """What a browser upload does to the FileUpload widget, in the installed ipywidgets' own format."""
    import ipywidgets

    widget = app.steps["pick"].upload
    if int(ipywidgets.__version__.split(".")[0]) >= 8:
        widget.value = (
            {
                "name": name,
                "type": "video/mp4",
                "size": len(content),
                "content": memoryview(content),
                "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
            },
        )
    else:  # 7.x: the browser sends metadata and data, then bumps _counter, which rebuilds value
        widget.set_trait(
            "metadata", [{"name": name, "type": "video/mp4", "size": len(content), "lastModified": 1704067200000}]
        )
        widget.set_trait("data", [content])
        widget.set_trait("_counter", widget._counter + 1)


def check_upload_run_and_exports(models: Path, out: Path) -> None:
    """Upload a real video, run, make the annotated video and emotion clips: both links stay."""
    from vemoclap.app import VemoclapApp
    from vemoclap.app._widgets import upload_entries
    from vemoclap.generated_video import make_sample

    video = make_sample(out / "astronaut clip.mp4", seconds=2.0, size=(320, 180), fps=10)
    app = VemoclapApp(
        models_dir=models,
        classifier=models / "classifier",
        extractors=["face_emotion"],
        analyzer_options=FAST,
        output_dir=out / "app",
    )
    app.widget()
    app.steps["source"].toggle.value = "upload"
    assert app.steps["pick"].upload in app.steps["pick"].box.children
    upload(app, "../My Holiday (1).mp4", video.read_bytes())
    assert "is ready" in visible_text(app.steps["pick"].upload_message.value), app.steps["pick"].upload_message.value
    saved = app.uploaded_path
    assert saved.is_file() and saved.name == "My_Holiday_1.mp4" and saved.read_bytes() == video.read_bytes()
    assert (out / "app" / "uploads") in saved.parents  # the name never picked the folder
    assert len(upload_entries(app.steps["pick"].upload.value)) == 1  # its button counts the file: "Choose video (1)"

    app.steps["run"].button.click()  # Run without Load loads first
    assert app.result is not None, visible_text(app.steps["run"].message.value)
    assert all("loaded" in row.status.value for row in app.steps["load"].rows.values())
    assert app.steps["run"].frame.value[:8] == PNG
    assert (
        app.steps["run"].progress.bar.value == app.steps["run"].progress.bar.max
        and app.steps["run"].progress.bar.bar_style == "success"
    )

    path = app.make_annotated_video()
    assert path is not None and path.stat().st_size > 1000, app.steps["run"].video_message.value
    video_link = app.steps["run"].video_message.value
    assert "data:video/mp4;base64," in video_link
    emotion = app.controller.timeline().windows["top"].iloc[0]
    app.steps["run"].emotion.value = emotion
    app.steps["run"].clips_button.click()
    written = list(path.parent.glob(f"*_{emotion}.mp4"))
    assert written and written[0].stat().st_size > 1000, app.steps["run"].clips_message.value
    assert "–" in visible_text(app.steps["run"].clips_message.value)  # the windows' times are listed
    assert app.steps["run"].video_message.value == video_link  # the clips did not replace the annotated video's link
    assert (
        app.steps["run"].progress.bar.value == app.steps["run"].progress.bar.max
        and "ready" in app.steps["run"].progress.label.value
    )


def check_refused_upload_is_cleared(models: Path, out: Path) -> None:
    from vemoclap.app import VemoclapApp
    from vemoclap.app._widgets import upload_entries

    app = VemoclapApp(models_dir=models, extractors=["face_emotion"], output_dir=out / "refused")
    app.steps["source"].toggle.value = "upload"
    upload(app, "notes.mp4", b"these are my notes, not a video\n" * 20)
    text = visible_text(app.steps["pick"].upload_message.value)
    assert text.startswith("⚠ notes.mp4: ") and "\n" not in text, text
    assert app.uploaded_path is None and upload_entries(app.steps["pick"].upload.value) == []


CHECKS = [check_upload_run_and_exports, check_refused_upload_is_cleared]


def main(argv: list[str]) -> int:
    import ipywidgets

    models, out = Path(argv[0]), Path(argv[1])
    for check in CHECKS:
        check(models, out / check.__name__)
        print(f"ok {check.__name__} (ipywidgets {ipywidgets.__version__})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
