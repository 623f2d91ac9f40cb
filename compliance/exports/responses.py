"""The HTTP responses of an export made while the request waits.

A CSV streams: under ASGI as an async iterator, under WSGI (and the test client) as a sync one, since
Django reads an iterator of the other kind into a list first, the whole export in memory. Its SHA-256
is computed over the bytes as they are sent and handed to ``on_sent`` after the last one (a stream
cannot name its hash before it starts; a client that abandons the download never reaches it).
An XLSX or PDF is written to a temporary file first, so its ``Repr-Digest`` (RFC 9530) is known
before the first byte is sent."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice
from typing import BinaryIO

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest, StreamingHttpResponse

from compliance.exports.digest import repr_digest
from compliance.exports.formats import CONTENT_TYPES

CSV_BATCH = 500  # CSV lines per chunk sent (and, under ASGI, handed from the request's thread at a time)


def _hashed_chunks(lines: Iterator[str], on_sent: Callable[[str, int], None] | None) -> Iterator[bytes]:
    digest, size = hashlib.sha256(), 0
    while text := "".join(islice(lines, CSV_BATCH)):
        chunk = text.encode("utf-8")
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if on_sent is not None:
        on_sent(digest.hexdigest(), size)


async def _chunks_async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Hand ``chunks`` over to the event loop one at a time. They are made in the request's thread
    (thread-sensitive), which keeps the database connection and its server-side cursor."""
    take = sync_to_async(lambda: next(chunks, b""), thread_sensitive=True)
    while chunk := await take():
        yield chunk


def csv_stream_response(
    request: HttpRequest, lines: Iterator[str], filename: str, *, on_sent: Callable[[str, int], None] | None = None
) -> StreamingHttpResponse:
    """Stream the CSV ``lines`` as an attachment named ``filename``."""
    chunks = _hashed_chunks(lines, on_sent)
    content = _chunks_async(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type=CONTENT_TYPES["csv"])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def file_response(file: BinaryIO, export_format: str, filename: str, sha256: str) -> FileResponse:
    """Send the finished export ``file`` (closed, and so deleted if temporary, once sent) with its digest."""
    response = FileResponse(file, as_attachment=True, filename=filename, content_type=CONTENT_TYPES[export_format])
    response["Repr-Digest"] = repr_digest(sha256)
    response["Cache-Control"] = "no-store"
    return response
