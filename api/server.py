"""The HTTP protocol ``bingeo serve`` runs: uvicorn's, with a deadline for a request's headers.

uvicorn times out idle keep-alive connections, but not a client that sends its request line
and headers slowly (or nothing at all after connecting): each such client would hold a
connection for as long as it likes. Here every request's headers must be complete within
``header_timeout_s`` of its first byte (or of the connection, for the first request); otherwise
the server answers 408 and closes the connection. The body's deadline is kept by
``api.middleware.RequestContext``.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bingeo.settings import Settings

_TIMEOUT_BODY = b'{"detail": "request headers not received in time", "code": "request_timeout"}'
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose headers come too slowly."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def configured(cls, settings: Settings) -> type[HeaderTimeoutProtocol]:
        """The class, with the deadline of ``settings`` (each server process sets its own)."""
        cls.header_timeout_s = settings.header_timeout_s
        return cls

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()
