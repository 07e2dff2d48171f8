"""The notebook's optional last cell: ``vemoclap reproduce ekman6`` behind a button.

The same call as the command (:func:`vemoclap.training.reproduce.reproduce_ekman6`), with the
app's models folder (the heads verdict reads the shipped reference classifier there), its device
and its output folder; the downloads' and the training's progress bars show in the cell."""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING

from ..errors import user_errors
from ._widgets import widgets
from .controller import describe_error
from .views import message_html

if TYPE_CHECKING:  # pragma: no cover
    from ..training.reproduce import ReproduceOptions, ReproduceReport
    from .ui import VemoclapApp

log = logging.getLogger(__name__)


class ReproduceView:
    """Runs (seeds), the cleaned protocol too or not, a button, the progress, and the table."""

    def __init__(self, app: "VemoclapApp"):
        W = widgets
        self.controller = app.controller
        self.runs = W.BoundedIntText(value=3, min=1, max=20, description="runs (seeds)")
        self.cleaned = W.Checkbox(value=False, description="also the cleaned protocol (the blacklist on both splits)")
        self.button = W.Button(description="Reproduce the paper's table", button_style="primary")
        self.button.layout.width = "260px"
        self.progress = W.Output()
        self.message = W.HTML("")
        self.table = W.HTML("")
        self.widget = W.VBox([W.HBox([self.runs, self.cleaned]), self.button, self.progress, self.message, self.table])
        self.widget.add_class("vemoclap-reproduce")
        self.button.on_click(lambda _: self.reproduce())

    def options(self) -> "ReproduceOptions":
        from ..training.reproduce import ReproduceOptions

        return ReproduceOptions(
            out=self.controller.output_dir / "reproduce" / "ekman6",
            runs=int(self.runs.value),
            protocols=("paper", "cleaned") if self.cleaned.value else ("paper",),
            device=self.controller.device,
            models_dir=self.controller.models_dir,
        )

    def reproduce(self) -> "ReproduceReport | None":
        """Fetch the published features, train, evaluate, settle the heads; show the table."""
        from ..training.reproduce import reproduce_ekman6

        self.button.disabled = True
        self.message.value, self.table.value = "", ""
        self.progress.clear_output()
        try:
            with self.progress:  # the bars and stage lines show here, as the command prints them
                report = reproduce_ekman6(self.options())
        except Exception as exc:
            if isinstance(exc, user_errors()):
                log.info("reproduce: %s", exc)
            else:
                log.exception("reproduce failed")
            self.message.value = message_html(describe_error(exc, "reproducing the paper's table"))
            return None
        finally:
            self.button.disabled = False
        self.message.value = message_html(f"written to {self.options().out / 'table.md'}", ok=True)
        self.table.value = f"<pre style='white-space: pre-wrap'>{html.escape(report.text())}</pre>"
        return report
