"""Reading an answer compressed although llmtop asked for none.

Requests say ``Accept-Encoding: identity``: a server or proxy that compresses a stream may hold
bytes back to fill its compression blocks, and every token's timestamp would move with them.
One that compresses anyway still works for gzip and deflate: each network read is inflated as
it arrives, so a token is stamped when the read that carried it arrived, the first moment its
text could be read. Any other encoding (``br``, ``zstd``) fails the request as ``protocol``
naming it, instead of as unreadable JSON.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from engine.http.failures import StreamError
from engine.records import ErrorKind

READABLE = ("gzip", "x-gzip", "deflate")
"""``Content-Encoding`` values llmtop can undo (with the standard library's zlib)."""
MAX_PIECE_BYTES = 2**20
"""Inflate at most this much at a time: a small read can expand a thousandfold, and the SSE
decoder bounds lines only if it is handed the result in pieces."""


class Inflater:
    """Undoes gzip or deflate one network read at a time."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        # 32 + 15: zlib reads the gzip or the zlib header, whichever the data starts with.
        self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)
        self._head: bytes | None = b""
        """The first bytes, until there are two to tell a zlib header from raw deflate
        (``None`` once told)."""

    def feed(self, data: bytes) -> list[bytes]:
        """Inflate one read; the inflated bytes, in pieces of at most ``MAX_PIECE_BYTES``."""
        try:
            return self._feed(data)
        except zlib.error as exc:
            raise StreamError(
                ErrorKind.PROTOCOL, f"could not read the {self.encoding}-compressed answer: {exc}"
            ) from None

    def _feed(self, data: bytes) -> list[bytes]:
        if self._head is not None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return []
            self._head = None
            if self.encoding == "deflate" and not _has_zlib_header(data):
                # "deflate" is meant to carry a zlib header; some servers send raw deflate.
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        pieces = [self._inflate.decompress(data, MAX_PIECE_BYTES)]
        while self._inflate.unconsumed_tail:
            pieces.append(self._inflate.decompress(self._inflate.unconsumed_tail, MAX_PIECE_BYTES))
        return [piece for piece in pieces if piece]


def inflater_for(content_encoding: str | None) -> Inflater | None:
    """The inflater a response needs: ``None`` when it is not compressed. Raises
    ``StreamError`` (``protocol``) for an encoding llmtop cannot read.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding not in READABLE:
        raise StreamError(
            ErrorKind.PROTOCOL,
            f"the server compressed its answer with {content_encoding!r}, which llmtop did not "
            "ask for and cannot read (only gzip and deflate)",
        )
    return Inflater(encoding)


async def inflated(reads: AsyncIterator[bytes], inflater: Inflater) -> AsyncIterator[bytes]:
    """The reads of a compressed body, inflated as each one arrives."""
    async for data in reads:
        for piece in inflater.feed(data):
            yield piece


def _has_zlib_header(data: bytes) -> bool:
    """RFC 1950: compression method 8 in the low nibble, header checksum a multiple of 31."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
