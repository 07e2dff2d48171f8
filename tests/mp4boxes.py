"""Box-level edits of MP4 files for tests: find a box by its path and overwrite a header field.

Only what the tests need: the container boxes on the way to the sample tables, the movie, track
and media headers, the sample tables and the visual sample entry (avc1) of ``stsd``.
"""

from __future__ import annotations

import struct

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta", b"mvex"}


def boxes(data: bytes, start: int = 0, end: int | None = None, parent: tuple = ()):
    """Yield (path, header_start, payload_start, box_end) for every box, depth first."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        path = parent + (kind.decode("latin-1"),)
        yield path, pos, pos + header, pos + size
        if kind in _CONTAINERS:
            yield from boxes(data, pos + header, pos + size, path)
        elif kind == b"stsd":  # full box + entry count, then sample entries
            yield from boxes(data, pos + header + 8, pos + size, path)
        pos += size


def find(data: bytes, name: str) -> list[tuple[int, int]]:
    """(payload_start, box_end) of every box whose path ends with ``name`` (e.g. "mdia/mdhd")."""
    want = tuple(name.split("/"))
    return [(payload, stop) for path, _, payload, stop in boxes(data) if path[-len(want) :] == want]


def header_fields(data: bytes, payload: int, kind: str) -> dict[str, tuple[int, str]]:
    """Offsets (absolute) and struct formats of the editable fields of one box's payload."""
    version = data[payload]
    if kind in ("mvhd", "mdhd"):
        return (
            {"timescale": (payload + 12, ">I"), "duration": (payload + 16, ">I")}
            if version == 0
            else {"timescale": (payload + 20, ">I"), "duration": (payload + 24, ">Q")}
        )
    if kind == "tkhd":
        return (
            {"duration": (payload + 20, ">I"), "width": (payload + 76, ">I"), "height": (payload + 80, ">I")}
            if version == 0
            else {"duration": (payload + 28, ">Q"), "width": (payload + 88, ">I"), "height": (payload + 92, ">I")}
        )
    if kind == "avc1":
        return {"width": (payload + 24, ">H"), "height": (payload + 26, ">H")}
    if kind == "stsz":
        return {"sample_size": (payload + 4, ">I"), "sample_count": (payload + 8, ">I")}
    raise KeyError(kind)


def set_field(data: bytes, name: str, field: str, value: int, which: int | None = None) -> bytes:
    """``data`` with ``field`` of the box(es) at path ``name`` set to ``value`` (all, or number ``which``)."""
    out = bytearray(data)
    for i, (payload, _) in enumerate(find(data, name)):
        if which is not None and i != which:
            continue
        offset, fmt = header_fields(data, payload, name.split("/")[-1])[field]
        size = struct.calcsize(fmt)
        out[offset : offset + size] = struct.pack(fmt, value & ((1 << (8 * size)) - 1))
    return bytes(out)


def table(data: bytes, name: str, which: int = 0) -> tuple[int, int, int]:
    """(first entry offset, entry count, entry size) of a sample table: stsz, stts or stco."""
    payload, _ = find(data, name)[which]
    kind = name.split("/")[-1]
    if kind == "stsz":
        return payload + 12, struct.unpack(">I", data[payload + 8 : payload + 12])[0], 4
    count = struct.unpack(">I", data[payload + 4 : payload + 8])[0]
    return payload + 8, count, {"stts": 8, "stco": 4, "stss": 4}[kind]


def set_entries(data: bytes, name: str, value: int, *, column: int = 0, which: int = 0, every: int = 1) -> bytes:
    """Set column ``column`` (4-byte words) of every ``every``-th entry of a sample table."""
    out = bytearray(data)
    first, count, size = table(data, name, which)
    for i in range(0, count, every):
        offset = first + i * size + 4 * column
        if offset + 4 <= len(out):
            out[offset : offset + 4] = struct.pack(">I", value & 0xFFFFFFFF)
    return bytes(out)


def track_kinds(data: bytes) -> list[str]:
    """The handler type ("vide", "soun") of each track, in order."""
    return [data[p + 8 : p + 12].decode("latin-1") for p, _ in find(data, "mdia/hdlr")]
