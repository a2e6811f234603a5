"""Reading a caller's Arrow IPC stream without letting it cost more than its size.

An Arrow stream describes its own layout, and a few bytes of description can ask for a great
deal: a compressed buffer claims its decompressed length (49 KB of zstd made 1.6 GB here), a
string view or a list view may point every row at the same large region, and a flipped byte made
Polars' own reader ask for 100 TB and abort the process. So, before any column is built:

1. the body must end with the end-of-stream marker (a stream cut short is not a shorter batch);
2. each message's header is read (format/Message.fbs): a batch with compressed buffers is
   refused, and the rows the batches declare are counted against the batch limit;
3. Arrow's reader (pyarrow, fuzzed for this) reads the messages and validates every array;
4. only plain column types are taken — integers, floats, booleans, dates, text (dictionary-
   encoded too) and lists of dates or text — and no text value may be longer than `MAX_TEXT`;
5. then the columns pass to Polars.
"""
from __future__ import annotations

import struct
from typing import Optional

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .problems import Problem

MEDIA_TYPE = "application/vnd.apache.arrow.stream"
MAX_TEXT = 1024               # bytes of one text value: no input's value comes near (ids: 64 characters)
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_DICTIONARY_BATCH, _RECORD_BATCH = 2, 3            # Message.header's union tags (format/Message.fbs)


def read_stream(body: bytes, max_records: int) -> pl.DataFrame:
    if not body:
        raise Problem("malformed-request", "the body is empty: send an Arrow IPC stream")
    if not body.endswith(END_OF_STREAM):
        raise Problem("malformed-request", "the body is not a whole Arrow IPC stream: it does not end with the "
                      "end-of-stream marker (0xFFFFFFFF 0x00000000) that Arrow writers put when the stream is "
                      "closed; close the writer before sending")
    try:
        rows = _declared_rows(body)
        if rows > max_records:
            raise Problem("too-large", f"the stream holds {rows} records, more than the {max_records} a batch "
                          "may hold; split it")
        table = pa.ipc.open_stream(body).read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError, struct.error) as exc:
        raise Problem("malformed-request", f"the body is not an Arrow IPC stream: {_first_line(exc)}")
    problems = [p for field, column in zip(table.schema, table.columns) for p in _column_problems(field, column)]
    if problems:
        raise columns_refused(problems)
    try:
        frame = pl.from_arrow(table)
    except (pl.exceptions.PolarsError, pa.ArrowException, ValueError) as exc:
        raise Problem("malformed-request", f"the stream's columns cannot be read: {_first_line(exc)}")
    if not isinstance(frame, pl.DataFrame):
        raise Problem("malformed-request", "the body is not an Arrow IPC stream of a table")
    return frame


def columns_refused(problems: list[dict]) -> Problem:
    """The 422 of a stream whose columns cannot be taken, an error per column."""
    return Problem("invalid-request", "; ".join(p["msg"] for p in problems[:5]) + ("; …" if len(problems) > 5 else ""),
                   errors=problems)


# ---- 2. message headers ------------------------------------------------------------------------
def _declared_rows(body: bytes) -> int:
    """The rows the stream's record batches declare; a compressed batch is refused."""
    rows = 0
    for message in pa.ipc.MessageReader.open_stream(body):
        if message.type not in ("record batch", "dictionary batch"):
            continue
        declared, compressed = batch_header(message.metadata.to_pybytes())
        if compressed:
            raise Problem("unsupported-media-type", "the stream's buffers are compressed (LZ4 or ZSTD): send them "
                          "uncompressed (a few compressed bytes may claim gigabytes, and loopback or a LAN "
                          "carries the plain columns faster than they decompress)")
        if message.type == "record batch":
            rows += declared
    return rows


def batch_header(metadata: bytes) -> tuple[int, bool]:
    """(rows, compressed) of a record batch or dictionary batch message, from its flatbuffer:
    Message{version, header_type, header} → RecordBatch{length, nodes, buffers, compression} (a
    DictionaryBatch{id, data} holds one). Only these fields are read, each bounds-checked."""
    root = _u32(metadata, 0)
    kind = _field(metadata, root, 1)
    header = _ref(metadata, _field(metadata, root, 2))
    if kind is None or header is None:
        raise ValueError("a batch message without its header")
    tag = metadata[kind]
    if tag == _DICTIONARY_BATCH:
        header = _ref(metadata, _field(metadata, header, 1))
        if header is None:
            raise ValueError("a dictionary batch without its data")
    elif tag != _RECORD_BATCH:
        raise ValueError(f"a batch message whose header is of kind {tag}")
    length = _field(metadata, header, 0)
    rows = _unpack("<q", metadata, length) if length is not None else 0
    if rows < 0:
        raise ValueError("a batch of a negative number of rows")
    return rows, _field(metadata, header, 3) is not None


def _unpack(fmt: str, buf: bytes, at: int):
    if at < 0 or at + struct.calcsize(fmt) > len(buf):
        raise ValueError("a message header points outside itself")
    return struct.unpack_from(fmt, buf, at)[0]


def _u32(buf: bytes, at: int) -> int:
    return _unpack("<I", buf, at)


def _field(buf: bytes, table: int, index: int) -> Optional[int]:
    """Where field `index` of the flatbuffer table at `table` is, or None when it is absent."""
    vtable = table - _unpack("<i", buf, table)
    size = _unpack("<H", buf, vtable)
    slot = 4 + 2 * index
    if slot + 2 > size:
        return None
    offset = _unpack("<H", buf, vtable + slot)
    return table + offset if offset else None


def _ref(buf: bytes, at: Optional[int]) -> Optional[int]:
    return None if at is None else at + _u32(buf, at)


# ---- 4. column types and text lengths ----------------------------------------------------------
def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_plain(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or t in (pa.float32(), pa.float64()) or pa.types.is_boolean(t)
            or pa.types.is_null(t) or pa.types.is_date(t) or _is_text(t))


def _taken(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_text(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        v = t.value_type
        return _is_text(v) or pa.types.is_date(v) or pa.types.is_null(v)
    return _is_plain(t)


def _column_problems(field: pa.Field, column: pa.ChunkedArray) -> list[dict]:
    if not _taken(field.type):
        return [{"loc": ["columns", field.name], "type": "wrong_type",
                 "msg": f"`{field.name}` is of Arrow type {field.type}, which no input takes: send integers, "
                        "floats, booleans, dates, text (string, string_view or dictionary of text), or a list of "
                        "dates or of text"}]
    longest = _longest_text(column)
    if longest > MAX_TEXT:
        return [{"loc": ["columns", field.name], "type": "too_long",
                 "msg": f"`{field.name}` holds a text of {longest} bytes; no input takes more than {MAX_TEXT}"}]
    return []


def _longest_text(column: pa.ChunkedArray) -> int:
    longest = 0
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary
        elif pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type):
            chunk = chunk.flatten()
        if not len(chunk) or not _is_text(chunk.type):
            continue
        if pa.types.is_string_view(chunk.type):
            longest = max(longest, _longest_view(chunk))
        else:
            longest = max(longest, pc.max(pc.binary_length(chunk)).as_py() or 0)
    return longest


def _longest_view(chunk: pa.Array) -> int:
    """The longest value of a string view array, read off its views (16 bytes each, the length
    first; Arrow's compute functions do not take views), nulls left out."""
    views = np.frombuffer(chunk.buffers()[1], dtype="<i4")[4 * chunk.offset:4 * (chunk.offset + len(chunk)):4]
    if chunk.null_count:
        views = views[chunk.is_valid().to_numpy(zero_copy_only=False)]
    return int(views.max()) if len(views) else 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
