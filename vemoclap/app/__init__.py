"""The notebook app: five widget steps that run on Colab (ipywidgets 7.7) and in Jupyter or Voila (8).

- ``controller``: state and actions of the five steps, no widgets (set up, load models, choose the
  source, pick the video, run and show);
- ``step_table``: ``STEPS``, each step's number, title, cell and widget class, once;
- ``steps``: one widget class per step, owning its widgets and actions; ``ui``: :class:`VemoclapApp`,
  the steps together (``app.steps``) with the explore views;
- ``views``: the HTML of a Result (outputs describe themselves); figures live in ``vemoclap.draw.figures``;
- ``cache``: loaded models kept across reruns; ``colab``: Colab's uploader and Drive;
- ``notebook``: notebooks/vemoclap.ipynb and the page's notebook; ``launch``: ``vemoclap app``;
- ``install``: step 1's stdlib-only installer, inlined into the notebook.

Importing this package imports no widgets: ``VemoclapApp`` and ``Controller`` load on first use.
"""

from __future__ import annotations

from typing import Any

from .cache import cached_models, clear_cache
from .launch import add_commands, cmd_app, main, voila_command
from .logs import LOG_FILE
from .notebook import NOTEBOOK_NAME, build_notebook, notebook_cells, write_notebook

__all__ = [
    "VemoclapApp",
    "Controller",
    "add_commands",
    "build_notebook",
    "cached_models",
    "clear_cache",
    "cmd_app",
    "main",
    "notebook_cells",
    "voila_command",
    "write_notebook",
    "LOG_FILE",
    "NOTEBOOK_NAME",
]


def __getattr__(name: str) -> Any:
    if name == "VemoclapApp":
        from .ui import VemoclapApp

        return VemoclapApp
    if name == "Controller":
        from .controller import Controller

        return Controller
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
