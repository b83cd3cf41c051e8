"""The failure helpers (engine/http/failures.py): readable messages from error bodies (JSON in
its several shapes, HTML, text) and error kinds from transport exceptions as aiohttp raises
them (bare, or inside another exception: the cause chain decides)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.http_exceptions import TransferEncodingError
from aiohttp.streams import StreamReader

from engine.http.exchange import Exchange
from engine.http.failures import classify_exception, error_message_from_body
from engine.records import ErrorKind
from tests.support.exchange_replay import MS, SCHEDULED, SENT
from tests.support.streams import STREAMS

# -- error bodies -------------------------------------------------------------------------------


def test_error_body_llamacpp_capture() -> None:
    body = (STREAMS / "llamacpp_error_context_400.json").read_bytes()
    assert error_message_from_body(body) == (
        "request (1524 tokens) exceeds the available context size (1024 tokens), try increasing it"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": {"message": "Rate limit reached", "type": "requests", '
            b'"code": "rate_limit"}}',
            "Rate limit reached",
        ),
        (
            b'{"object": "error", "message": "max_tokens is too large", "type": "BadRequestError",'
            b' "param": null, "code": 400}',
            "max_tokens is too large",
        ),
        (b'{"detail": "Not Found"}', "Not Found"),
        (
            b'{"error": "Input validation error: inputs tokens + max_new_tokens must be <= 4096",'
            b' "error_type": "validation"}',
            "Input validation error: inputs tokens + max_new_tokens must be <= 4096",
        ),
        (b"Internal Server Error", "Internal Server Error"),
        (b"", "(empty body)"),
    ],
)
def test_error_body_json_shapes_and_text(body: bytes, message: str) -> None:
    assert error_message_from_body(body) == message


def test_error_body_fastapi_validation_list_names_the_problem() -> None:
    body = (
        b'{"detail": [{"type": "missing", "loc": ["body", "messages"],'
        b' "msg": "Field required", "input": {}}]}'
    )
    message = error_message_from_body(body)
    assert "Field required" in message
    assert "messages" in message


def test_error_body_html_page_is_reduced_to_its_text() -> None:
    body = (
        b"<html>\r\n<head><title>502 Bad Gateway</title>"
        b"<style>body { color: red; }</style>"
        b"<script>var x = '<b>';</script></head>\r\n"
        b"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
        b"<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"
    )
    assert error_message_from_body(body) == "502 Bad Gateway 502 Bad Gateway nginx/1.24.0"


def test_error_body_is_capped() -> None:
    assert len(error_message_from_body(b'{"error": {"message": "' + b"x" * 2000 + b'"}}')) == 500
    assert len(error_message_from_body(b"y " * 2000)) == 500


# -- transport exceptions, as aiohttp raises them or wrapped by another layer ---------------------


class _Wrapper(Exception):
    """Some other layer's exception raised from aiohttp's, as a library between would."""


def wrapped(exc: BaseException) -> BaseException:
    """Raise ``exc`` from inside another exception and return the outer one: the classifier
    must read the cause chain, not the outermost type."""
    try:
        try:
            raise exc
        except BaseException as inner:  # noqa: BLE001
            raise _Wrapper(str(inner)) from inner
    except BaseException as out:  # noqa: BLE001
        return out
    raise AssertionError("not raised")


def exchange(*, connected: bool = False, headers: bool = False) -> Exchange:
    ex = Exchange(SCHEDULED)
    ex.sent_ns = SENT
    if connected:
        ex.connection_ready_ns = SENT + MS
    if headers:
        ex.headers_ns = SENT + 2 * MS
    return ex


def refused() -> aiohttp.ClientConnectorError:
    key = ConnectionKey("127.0.0.1", 9, False, True, None, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connect call failed"))


def test_bare_and_wrapped_exceptions_classify_alike() -> None:
    for exc in (aiohttp.ServerDisconnectedError(), refused()):
        ex = exchange()
        assert classify_exception(exc, ex) == classify_exception(wrapped(exc), ex)


def test_refused_connection_is_connect() -> None:
    exc = wrapped(refused())
    kind, message = classify_exception(exc, exchange())
    assert kind == ErrorKind.CONNECT
    assert message == "cannot connect to 127.0.0.1:9: Connection refused"


def test_server_disconnect_mid_stream_is_stream_broken_not_timeout() -> None:
    kind, message = classify_exception(
        wrapped(aiohttp.ServerDisconnectedError()), exchange(connected=True, headers=True)
    )
    assert kind == ErrorKind.STREAM_BROKEN
    assert message == "the server closed the connection mid-answer"


def test_server_disconnect_before_any_connection_is_connect() -> None:
    kind, message = classify_exception(wrapped(aiohttp.ServerDisconnectedError()), exchange())
    assert kind == ErrorKind.CONNECT
    assert message == "the server closed the connection before answering"


def test_truncated_payload_after_headers_is_stream_broken() -> None:
    exc = wrapped(aiohttp.ClientPayloadError("Response payload is not completed"))
    kind, message = classify_exception(exc, exchange(connected=True, headers=True))
    assert kind == ErrorKind.STREAM_BROKEN
    assert "Response payload is not completed" in message


def test_read_stall_is_timeout_naming_the_stall() -> None:
    exc = wrapped(aiohttp.SocketTimeoutError("Timeout on reading data from socket"))
    kind, message = classify_exception(exc, exchange(connected=True, headers=True))
    assert kind == ErrorKind.TIMEOUT
    assert message == "no data for the stall timeout: Timeout on reading data from socket"


def test_connect_timeout_is_timeout_naming_the_connect_phase() -> None:
    exc = wrapped(aiohttp.ConnectionTimeoutError("Connection timeout to host"))
    kind, message = classify_exception(exc, exchange())
    assert kind == ErrorKind.TIMEOUT
    assert message == "connect: Connection timeout to host"


def test_unexpected_exception_is_protocol() -> None:
    kind, message = classify_exception(ValueError("bad frame"), exchange(headers=True))
    assert kind == ErrorKind.PROTOCOL
    assert message == "unexpected error reading the answer: ValueError: bad frame"


def test_a_read_that_finds_the_connection_gone_is_stream_broken() -> None:
    # What aiohttp's stream reader raises when its connection was closed under it: a bare
    # RuntimeError, no aiohttp or OS error class to go by.
    async def read_from_a_closed_connection() -> None:
        await StreamReader(ResponseHandler(asyncio.get_running_loop()), 2**16).read(1)

    with pytest.raises(RuntimeError) as caught:
        asyncio.run(read_from_a_closed_connection())
    kind, message = classify_exception(caught.value, exchange(connected=True, headers=True))
    assert kind == ErrorKind.STREAM_BROKEN
    assert message == "the connection closed mid-answer"


def test_a_truncated_chunked_body_says_so_without_aiohttps_400() -> None:
    cause = TransferEncodingError("Not enough data to satisfy transfer length header.")
    payload = aiohttp.ClientPayloadError(f"Response payload is not completed: {cause!r}")
    payload.__cause__ = cause
    kind, message = classify_exception(wrapped(payload), exchange(connected=True, headers=True))
    assert kind == ErrorKind.STREAM_BROKEN
    assert message == (
        "the connection closed before the answer was complete (Not enough data to satisfy "
        "transfer length header.)"
    )
