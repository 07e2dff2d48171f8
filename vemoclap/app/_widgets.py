"""ipywidgets imported on first use, and what differs between ipywidgets 7.7 (Colab's) and 8."""

from __future__ import annotations

from typing import Any, Iterator, Mapping


class _LazyWidgets:
    """ipywidgets, imported on first use: the CLI imports this package and must work without the app
    extra installed."""

    def __getattr__(self, name: str) -> Any:
        try:
            import ipywidgets
        except ImportError:
            raise ImportError("the notebook app needs ipywidgets: pip install 'vemoclap[app]'") from None
        return getattr(ipywidgets, name)


widgets = _LazyWidgets()


def major_version() -> int:
    return int(str(widgets.__version__).split(".")[0])


def upload_entries(value: Any) -> list[tuple[str, bytes]]:
    """(name, content) of each file in a FileUpload's value.

    ipywidgets 7: a dict name → {"metadata": {...}, "content": bytes}; ipywidgets 8: a tuple of dicts
    with "name" and "content" (a memoryview).
    """
    entries: list[tuple[str, bytes]] = []
    if isinstance(value, Mapping):
        for name, item in value.items():
            meta = item.get("metadata", {}) if isinstance(item, Mapping) else {}
            entries.append((str(meta.get("name", name)), bytes(item.get("content", b""))))
        return entries
    for item in value or ():
        get = item.get if isinstance(item, Mapping) else (lambda k, d=None, _i=item: getattr(_i, k, d))
        entries.append((str(get("name", "upload")), bytes(get("content", b"") or b"")))
    return entries


def clear_upload(upload) -> None:
    """Empty a FileUpload (its button then counts 0 files again)."""
    if major_version() >= 8:
        upload.value = ()
    else:  # 7.x: value is read-only, rebuilt from metadata and data whenever _counter changes
        upload.set_trait("metadata", [])
        upload.set_trait("data", [])
        upload.set_trait("_counter", 0)
        upload.set_trait("value", {})


def walk(widget) -> Iterator[Any]:
    """Every widget below (and including) ``widget``."""
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from walk(child)
