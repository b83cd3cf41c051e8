"""Incremental Server-Sent Events decoder working on raw bytes.

It splits a byte stream into the ``data`` payloads of complete events. Working on bytes, and
decoding nothing itself, makes it immune to multi-byte UTF-8 characters split across network
reads: a payload is only handed out once its whole line has arrived, and the JSON parser reads
the bytes directly.

Tolerated, because real servers do all of it: ``data:`` with or without the space, LF or CRLF
line ends, comment lines (``: ping``) and other fields (``event:``, ``id:``, ``retry:``), events
not separated by blank lines, and a last event with no trailing newline (see ``close``).
"""

from __future__ import annotations

DONE = b"[DONE]"


class SseDecoder:
    """Turns network reads into event data payloads (bytes), in order.

    Attributes:
        event_type: the value of the last ``event:`` field seen (``b""`` when none); SGLang and
            others tag error events this way.

    """

    __slots__ = ("_buffer", "_data", "event_type")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self.event_type = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Consume one network read; return the payloads of the events it completed."""
        buffer = self._buffer + chunk if self._buffer else chunk
        end = buffer.rfind(b"\n")
        if end < 0:
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 1 :]
        out: list[bytes] = []
        data = self._data
        for line in buffer[:end].split(b"\n"):
            # Inline fast path for what every mainstream server sends ("data: {...}" then a blank
            # line); everything else goes through _line. Saves two calls per event.
            if not line:
                if data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data = self._data = []
            elif not data and line.startswith(b"data: ") and not line.endswith(b"\r"):
                data.append(line[6:])
            else:
                self._line(line, out)
                data = self._data
        return out

    def close(self) -> list[bytes]:
        """Flush at end of stream: a last line without newline still counts."""
        out: list[bytes] = []
        if self._buffer:
            self._line(self._buffer, out)
            self._buffer = b""
        self._dispatch(out)
        return out

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            self._dispatch(out)
        elif line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
            # Servers that omit the blank line between events (one `data:` line per event) are
            # common: a line that opens a new value after one that closed a JSON object starts a
            # new event. In valid JSON a "}" line is never followed by a "{" line (a comma sits
            # between), so a spec-valid event split over several `data:` lines stays whole.
            if self._data and _looks_complete(self._data[-1]) and _opens_value(value):
                self._dispatch(out)
            self._data.append(value)
        elif line.startswith(b"event:"):
            self.event_type = line[6:].strip()
        # ":" comments, "id:", "retry:" and unknown fields carry nothing we measure.

    def _dispatch(self, out: list[bytes]) -> None:
        if self._data:
            out.append(self._data[0] if len(self._data) == 1 else b"\n".join(self._data))
            self._data = []


def _looks_complete(payload: bytes) -> bool:
    """True for a data line that ends a JSON object or is the ``[DONE]`` marker."""
    stripped = payload.rstrip()
    return stripped.endswith(b"}") or stripped == DONE


def _opens_value(line: bytes) -> bool:
    """True for a data line that starts a JSON object or is the ``[DONE]`` marker."""
    stripped = line.strip()
    return stripped.startswith(b"{") or stripped == DONE
