"""The app's five steps, once: number, title, the cell that shows each (page and notebook) and the
widget class that builds it. The page and the notebook (``notebook.py``), the app's column of steps
(``ui.VemoclapApp.widget``) and the controller's messages ("… in step 4 first") read them here.

This module imports nothing of the app: the factory names a class of ``vemoclap.app.steps``, built
as ``cls(app)`` by :class:`vemoclap.app.ui.VemoclapApp`, so the controller and the notebook
generator can read the table without widgets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    number: int
    key: str  # the step's name in code: STEP["load"], app.steps["load"]
    title: str
    note: str  # the rest of the cell's first comment line, after "# Step N · Title"
    code: str  # the cell's code (the page's and the notebook's, unless notebook_code is set)
    factory: str  # the class in vemoclap.app.steps that builds the step's widgets, called with the app
    notebook_code: str | None = None  # the notebook's code where it differs from the page's
    notebook_note: str | None = None  # the notebook's note where it differs from the page's

    @property
    def heading(self) -> str:
        """ "2 · Load the models"."""
        return f"{self.number} · {self.title}"

    @property
    def name(self) -> str:
        """ "step 2", as messages say it."""
        return f"step {self.number}"

    def comment(self, note: str | None = None) -> str:
        return f"# Step {self.heading}{self.note if note is None else note}"

    def cell(self, page: bool = False) -> str:
        """The cell's source (the notebook's step 1 adds the installer: ``notebook.py``)."""
        code = self.code if page or self.notebook_code is None else self.notebook_code
        note = self.note if page or self.notebook_note is None else self.notebook_note
        return f"{self.comment(note)}\n{code}"


_RUN_NOTEBOOK = """display(app.run_step())
if os.environ.get("VEMOCLAP_AUTORUN") == "1":
    if os.environ.get("VEMOCLAP_SOURCE") == "upload":
        app.run_upload()
    else:
        app.autorun(os.environ.get("VEMOCLAP_SOURCE", "sample"))"""

STEPS: tuple[Step, ...] = (
    Step(
        1,
        "setup",
        "Setup",
        ": the machine, the versions, where the models come from (set by `vemoclap app`).",
        "from vemoclap.app import VemoclapApp\n\napp = VemoclapApp.from_env()\napp.setup_step()",
        "SetupStep",
    ),
    Step(
        2,
        "load",
        "Load the models",
        " (once: rerunning this cell or the app keeps them loaded).",
        "app.load_step()",
        "LoadStep",
    ),
    Step(
        3,
        "source",
        "Choose the source",
        ": a sample video, a YouTube link, an upload or a file path.",
        "app.source_step()",
        "SourceStep",
    ),
    Step(4, "pick", "Pick the video", ".", "app.pick_step()", "PickStep"),
    Step(
        5,
        "run",
        "Run and show",
        ".",
        "display(app.run_step())",
        "RunStep",
        notebook_code=_RUN_NOTEBOOK,
        notebook_note=". VEMOCLAP_AUTORUN=1 presses Load and Run on VEMOCLAP_SOURCE (headless runs, CI).",
    ),
)

STEP: dict[str, Step] = {step.key: step for step in STEPS}
