"""A multipart upload streamed to a temporary file, counting, and given up at the limit.

Starlette's own form parsing reads the whole body before the handler sees it, whatever its
size. Here the body is fed chunk by chunk to python-multipart's streaming parser: the
``file`` part goes to a file in a fresh temporary folder, the few small text fields to
memory, and reading stops as soon as the file passes ``max_bytes`` (:class:`TooLarge`).
The caller removes the folder (:meth:`Upload.remove`) whatever happens.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

#: The multipart field that carries the audio.
FILE_FIELD = "file"
#: Text fields accepted beside it, each at most FIELD_BYTES long.
TEXT_FIELDS = ("threshold", "aggregate", "hop")
FIELD_BYTES = 256
#: Multipart framing allowed beyond the file's bytes (boundaries, headers, text fields).
OVERHEAD_BYTES = 64 * 1024


class TooLarge(Exception):
    """The upload is over the limit; nothing more of it was read."""


class BadUpload(ValueError):
    """Not a multipart form, a malformed one, or one without the audio file."""


@dataclass
class Upload:
    """A received upload: the audio in a temporary folder, its name, and the text fields."""

    folder: Path
    path: Path | None = None  # the audio, once its part began
    filename: str = ""
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def remove(self) -> None:
        """Delete the temporary folder and the audio in it (safe to call twice)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _disposition(headers: dict[str, bytes]) -> tuple[str, str | None]:
    """The part's field name and file name (None for a text field)."""
    _, params = parse_options_header(headers.get("content-disposition", b""))
    name = params.get(b"name", b"").decode("utf-8", "replace")
    filename = params.get(b"filename")
    return name, None if filename is None else filename.decode("utf-8", "replace")


def display_name(filename: str) -> str:
    """The base name of an uploaded file, printable and at most 200 characters."""
    base = re.split(r"[\\/]", filename)[-1]
    base = "".join(c for c in base if c.isprintable())[:200]
    return base or "upload"


def _suffix(filename: str) -> str:
    """The extension of the uploaded name when it is a plain one (helps FFmpeg guess)."""
    suffix = Path(display_name(filename)).suffix
    return suffix.lower() if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""


async def receive_upload(
    content_type: str | None,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
    max_bytes: int,
) -> Upload:
    """Stream a ``multipart/form-data`` body into an :class:`Upload`.

    Raises :class:`TooLarge` as soon as the declared length or the bytes read pass the limit
    (the rest is never read), :class:`BadUpload` for anything else wrong; the temporary
    folder is removed before either leaves.
    """
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadUpload(f"expected a multipart/form-data body with a '{FILE_FIELD}' field")
    limit = max_bytes + OVERHEAD_BYTES
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise TooLarge(f"the upload is {int(content_length)} bytes; the limit is {max_bytes}")
    upload = Upload(Path(tempfile.mkdtemp(prefix="deepfake-audio-upload-")))
    state: dict = {"headers": {}, "field": b"", "value": b"", "kind": None, "handle": None}
    problems: list[str] = []

    def on_part_begin() -> None:
        state["headers"], state["kind"], state["text"] = {}, None, bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        name, filename = _disposition(state["headers"])
        if name == FILE_FIELD and filename is not None and upload.path is None:
            upload.filename = display_name(filename)
            upload.path = upload.folder / f"upload{_suffix(filename)}"
            state["kind"], state["handle"] = "file", open(upload.path, "wb")  # noqa: SIM115
        elif name in TEXT_FIELDS and filename is None:
            state["kind"], state["name"] = "text", name
        else:
            state["kind"] = "skip"  # unknown fields, a second file: read past, kept nowhere

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["kind"] == "file":
            upload.size += end - start
            if upload.size > max_bytes:
                raise TooLarge(f"the upload is over the limit of {max_bytes} bytes")
            state["handle"].write(data[start:end])
        elif state["kind"] == "text":
            state["text"] += data[start:end]
            if len(state["text"]) > FIELD_BYTES:
                problems.append(f"field '{state['name']}' is longer than {FIELD_BYTES} bytes")
                state["kind"] = "skip"

    def on_part_end() -> None:
        if state["kind"] == "file":
            state["handle"].close()
            state["handle"] = None
        elif state["kind"] == "text":
            upload.fields[state["name"]] = state["text"].decode("utf-8", "replace").strip()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    read = 0
    try:
        async for chunk in chunks:
            read += len(chunk)
            if read > limit:
                raise TooLarge(f"the upload is over the limit of {max_bytes} bytes")
            parser.write(chunk)
        parser.finalize()
    except TooLarge:
        upload.remove()
        raise
    except Exception as exc:  # python-multipart's parse errors, a client that went away
        upload.remove()
        raise BadUpload(f"malformed multipart body: {exc}") from exc
    finally:
        if state["handle"] is not None:
            state["handle"].close()
    if problems or upload.path is None:
        upload.remove()
        raise BadUpload(problems[0] if problems else f"missing field '{FILE_FIELD}' (a file)")
    if upload.size == 0:
        upload.remove()
        raise BadUpload("the uploaded file is empty")
    return upload
