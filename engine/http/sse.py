"""Incremental Server-Sent Events decoder working on raw bytes.

It splits a byte stream into the ``data`` payloads of complete events. Working on bytes, and
decoding nothing itself, makes it immune to multi-byte UTF-8 characters split across network
reads: a payload is only handed out once its whole line has arrived, and the JSON parser reads
the bytes directly.

Tolerated, because real servers do all of it: ``data:`` with or without the space, LF or CRLF
line ends, comment lines (``: ping``) and other fields (``id:``, ``retry:``, ``event:`` other
than ``error``), events not separated by blank lines, and a last event with no trailing newline
(see ``close``).

An ``event: error`` is the server saying the request failed: its data is not handed out with
the payloads but kept in ``error``, and nothing after it is handed out.

Not tolerated: a line (or an event of several ``data:`` lines) longer than ``max_line_bytes``.
The decoder holds an unfinished line until its end arrives, so without a bound one endless
line would hold the whole response in memory; it raises ``LineTooLong`` as soon as the bound
is passed, without waiting for the end.
"""

from __future__ import annotations

DONE = b"[DONE]"
MAX_LINE_BYTES = 8 * 2**20
"""Longest line or event accepted. An OpenAI stream's events are a few hundred bytes; a server
that sends a whole long answer with per-token logprobs in one chunk stays well under this."""


class LineTooLong(Exception):
    """A line or event grew past the decoder's bound before it ended."""


class SseDecoder:
    """Turns network reads into event data payloads (bytes), in order."""

    __slots__ = (
        "_held",
        "_held_bytes",
        "_data",
        "_data_bytes",
        "_error_event",
        "error",
        "max_line_bytes",
    )

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._held: list[bytes] = []
        """The unfinished line's reads, joined once its end arrives: joining at every read
        copied a long line once per read (a 20 MB line cost a second of CPU)."""
        self._held_bytes = 0
        self._data: list[bytes] = []
        self._data_bytes = 0
        self._error_event = False
        """The event being read said ``event: error`` (the field lasts one event)."""
        self.error: bytes | None = None
        """The data of the stream's ``event: error``, once one arrived."""
        self.max_line_bytes = max_line_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        """Consume one network read; return the payloads of the events it completed.

        Raises ``LineTooLong`` once an unfinished line passes ``max_line_bytes``.
        """
        if self.error is not None:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            self._hold(chunk)
            return []
        if self._held:
            held = b"".join(self._held)
            self._held, self._held_bytes = [], 0
            buffer, end = held + chunk, end + len(held)
        else:
            buffer = chunk
        if end + 1 < len(buffer):
            self._hold(buffer[end + 1 :])
        out: list[bytes] = []
        data, error_event = self._data, self._error_event
        for line in buffer[:end].split(b"\n"):
            # Inline fast path for what every mainstream server sends ("data: {...}" then a blank
            # line); everything else goes through _line. Saves two calls per event.
            if not line:
                if error_event:
                    self._dispatch(out)
                    if self.error is not None:
                        break
                    data, error_event = self._data, False
                elif data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data = self._data = []
            elif not data and line.startswith(b"data: ") and not line.endswith(b"\r"):
                data.append(line[6:])
            else:
                self._line(line, out)
                if self.error is not None:
                    break
                data, error_event = self._data, self._error_event
        return out

    def close(self) -> list[bytes]:
        """Flush at end of stream: a last line without newline still counts."""
        out: list[bytes] = []
        if self.error is not None:
            return out
        if self._held:
            self._line(b"".join(self._held), out)
            self._held, self._held_bytes = [], 0
        self._dispatch(out)
        return out

    def _hold(self, part: bytes) -> None:
        self._held.append(part)
        self._held_bytes += len(part)
        if self._held_bytes > self.max_line_bytes:
            raise LineTooLong(f"an SSE line passed {_size(self.max_line_bytes)} without ending")

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
                if self.error is not None:
                    return
            self._count_event_bytes(value)
            self._data.append(value)
        elif line.startswith(b"event:"):
            # Without blank lines, an event field after a complete value opens the next event.
            if self._data and _looks_complete(self._data[-1]):
                self._dispatch(out)
                if self.error is not None:
                    return
            self._error_event = line[6:].strip() == b"error"
        # ":" comments, "id:", "retry:" and unknown fields carry nothing we measure.

    def _count_event_bytes(self, value: bytes) -> None:
        """Bound an event of several lines. The fast path in ``feed`` takes an event's first
        line without counting it (the line bound covers one line), so the count starts from
        that line when the second arrives here.
        """
        data = self._data
        before = 0 if not data else len(data[0]) if len(data) == 1 else self._data_bytes
        self._data_bytes = before + len(value)
        if self._data_bytes > self.max_line_bytes:
            raise LineTooLong(f"an SSE event passed {_size(self.max_line_bytes)} without ending")

    def _dispatch(self, out: list[bytes]) -> None:
        if self._data:
            payload = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
            if self._error_event:
                self.error = payload
            else:
                out.append(payload)
            self._data = []
        self._error_event = False


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


def _looks_complete(payload: bytes) -> bool:
    """True for a data line that ends a JSON object or is the ``[DONE]`` marker."""
    stripped = payload.rstrip()
    return stripped.endswith(b"}") or stripped == DONE


def _opens_value(line: bytes) -> bool:
    """True for a data line that starts a JSON object or is the ``[DONE]`` marker."""
    stripped = line.strip()
    return stripped.startswith(b"{") or stripped == DONE
