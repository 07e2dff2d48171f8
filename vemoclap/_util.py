"""Small helpers shared across modules: JSON conversion and atomic file writes."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def ultralytics_offline() -> None:
    """Call before importing ultralytics: unless ``YOLO_OFFLINE`` is set, importing it looks up
    one.one.one.one and dns.google (its online check) and it may fetch assets from its own hosts.
    vemoclap fetches the YOLO weights itself (the model table), so ultralytics stays offline."""
    os.environ.setdefault("YOLO_OFFLINE", "1")


def cache_root() -> Path:
    """vemoclap's own cache folder: ``$VEMOCLAP_CACHE``, else ``~/.cache/vemoclap``."""
    return Path(os.environ.get("VEMOCLAP_CACHE") or Path.home() / ".cache" / "vemoclap").expanduser()


def to_jsonable(value: Any) -> Any:
    """Plain Python types from dataclasses, numpy values and paths, for json.dumps."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def encode_array(array: np.ndarray | None) -> dict[str, Any] | None:
    """An array as exact, compact JSON: dtype, shape and the raw bytes in base64."""
    import base64

    if array is None:
        return None
    array = np.ascontiguousarray(array)
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "base64": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def decode_array(value: dict[str, Any] | None) -> np.ndarray | None:
    """The inverse of :func:`encode_array`; the byte count must match the shape it claims."""
    import base64

    if value is None:
        return None
    dtype = np.dtype(value["dtype"])
    if dtype.kind not in "biuf":
        raise ValueError(f"array dtype {dtype} is not numeric")
    shape = tuple(int(n) for n in value["shape"])
    if len(shape) > 8 or any(n < 0 for n in shape):
        raise ValueError(f"array shape {shape[:9]} is not a feature's shape")
    raw = base64.b64decode(value["base64"], validate=True)
    if len(raw) != math.prod(shape) * dtype.itemsize:  # Python ints: a product past 2**63 cannot wrap
        raise ValueError(f"array data holds {len(raw)} bytes, not what shape {shape} of {dtype} needs")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def from_jsonable(cls: Any, value: Any) -> Any:
    """Rebuild a dataclass (recursively: lists, tuples, dicts, optionals) from :func:`to_jsonable` output."""
    import types
    import typing

    if value is None:
        return None
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(cls) if a is not type(None)]
        return from_jsonable(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple):
        args = typing.get_args(cls)
        item = args[0] if args else Any
        items = [from_jsonable(item, v) for v in value]
        return items if origin is list else tuple(items)
    if origin is dict:
        _, item = typing.get_args(cls) or (Any, Any)
        return {k: from_jsonable(item, v) for k, v in value.items()}
    if dataclasses.is_dataclass(cls) and isinstance(value, dict):
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # a forward reference that cannot be resolved here: keep plain values
            hints = {}
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in value and f.init:
                kwargs[f.name] = from_jsonable(hints.get(f.name, Any), value[f.name])
        return cls(**kwargs)
    if cls is np.ndarray:
        return np.asarray(value)
    return value


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """A temporary path beside ``path`` to write into; renamed over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file beside ``path`` and rename it into place: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, value: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")
