"""Audio as an HTTP response: one Range honoured, inline or as an attachment, never cached.

Shared by recordings' audio and coaching clips, so both answer ranges, 416
and headers the same way.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from callvault.api.metrics import AUDIO_BYTES_SERVED
from callvault.api.ranges import parse_range, unsatisfiable_headers
from callvault.errors import RangeNotSatisfiable
from callvault.services.playback import PlaybackAudio


def audio_response(request: Request, audio: PlaybackAudio, download: bool = False) -> Response:
    try:
        byte_range = parse_range(request.headers.get("range"), audio.size)
    except RangeNotSatisfiable as exc:
        return JSONResponse(
            exc.to_dict(), status_code=exc.status_code, headers=unsatisfiable_headers(audio.size)
        )
    disposition = "attachment" if download else "inline"
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'{disposition}; filename="{audio.filename}"',
        "Cache-Control": "no-store",
    }
    start, end = byte_range if byte_range else (0, audio.size)
    headers["Content-Length"] = str(end - start)
    status = 206 if byte_range else 200
    if byte_range:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{audio.size}"
    AUDIO_BYTES_SERVED.inc(end - start)
    return StreamingResponse(
        audio.iter_range(start, end), status_code=status, media_type=audio.content_type, headers=headers
    )
