"""Read an upload's ``multipart/form-data`` body as it streams in, with a running size cap.

FastAPI's ``UploadFile`` parameters are parsed before any dependency runs,
so the whole body of an unauthenticated client was spooled to a temporary
file before it was answered 401. Upload routes instead authenticate first,
then read the body here: chunk by chunk from the socket, into memory,
stopping with 413 the moment it passes the cap (a declared
``Content-Length`` over the cap is refused before one byte is read). Nothing
is ever written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from callvault.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia

# Room for the form's boundaries, part headers and text fields next to the file.
FORM_OVERHEAD = 64 * 1024
MAX_FIELD_BYTES = 4096
MAX_PARTS = 64


@dataclass
class UploadForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    file: bytes | None = None
    filename: str | None = None
    file_field: str = "file"

    def one(self, name: str) -> str | None:
        values = self.fields.get(name, [])
        if len(values) > 1:
            raise InvalidInput(f"form field {name!r} given {len(values)} times")
        return values[0] if values else None


class _Collector:
    """python-multipart callbacks: text fields and the one file part, into memory, capped."""

    def __init__(self, form: UploadForm, max_file_bytes: int) -> None:
        self.form = form
        self.max_file_bytes = max_file_bytes
        self.parts = 0
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._is_file = False
        self._buffer = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput(f"the form has more than {MAX_PARTS} parts")
        self._headers = {}
        self._buffer = bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise InvalidInput("every form part needs Content-Disposition: form-data; name=...")
        self._name = params[b"name"].decode(errors="replace")
        self._is_file = b"filename" in params
        if self._is_file:
            if self._name != self.form.file_field or self.form.file is not None:
                raise InvalidInput(f"send exactly one file, in the form field {self.form.file_field!r}")
            self.form.filename = params[b"filename"].decode(errors="replace")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        limit = self.max_file_bytes if self._is_file else MAX_FIELD_BYTES
        if len(self._buffer) + (end - start) > limit:
            if self._is_file:
                raise PayloadTooLarge(
                    f"upload is larger than the {limit}-byte limit (CALLVAULT_MAX_UPLOAD_BYTES)"
                )
            raise InvalidInput(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")
        self._buffer += data[start:end]

    def part_end(self) -> None:
        assert self._name is not None
        if self._is_file:
            self.form.file = bytes(self._buffer)
        else:
            try:
                value = self._buffer.decode()
            except UnicodeDecodeError:
                raise InvalidInput(f"form field {self._name!r} is not UTF-8") from None
            self.form.fields.setdefault(self._name, []).append(value)
        self._buffer = bytearray()


async def read_upload_form(request: Request, max_file_bytes: int, what: str = "recording") -> UploadForm:
    """The form of ``request``; call only after the caller is authenticated and allowed to upload."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise UnsupportedMedia(f"send the {what} as multipart/form-data with the audio in the field 'file'")
    cap = max_file_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise PayloadTooLarge(
            f"upload is larger than the {max_file_bytes}-byte limit (CALLVAULT_MAX_UPLOAD_BYTES)"
        )
    form = UploadForm()
    collector = _Collector(form, max_file_bytes)
    parser = MultipartParser(params[b"boundary"], collector.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > cap:
                raise PayloadTooLarge(
                    f"upload is larger than the {max_file_bytes}-byte limit (CALLVAULT_MAX_UPLOAD_BYTES)"
                )
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidInput(f"malformed multipart/form-data body: {exc}") from None
    if form.file is None:
        raise InvalidInput(f"the form has no file in the field {form.file_field!r}")
    return form
