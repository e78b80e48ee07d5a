"""ASGI middleware: request ids, the client's address, an access log without query strings,
and the body size limit."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import logging
import secrets
import time

log = logging.getLogger("bingeo.access")
# Request ids: a random prefix per process and a counter. Unique without a system call on the
# event loop's thread (uuid4 reads the kernel's random source, letting other threads take the
# interpreter at every request).
_PREFIX = secrets.token_hex(4)
_NUMBERS = itertools.count(1)


class RequestContext:
    """Gives every request an id and a ``Server-Timing`` header, refuses bodies over ``max_bytes``
    or not received within ``body_timeout_s`` of the request's start (408, connection closed),
    and logs one line per request.

    The client's address (``scope["client"]``, used by the audit and the login back-off) is the
    peer's, or, when the peer is one of ``trusted_proxies``, the rightmost address of
    ``X-Forwarded-For`` that is not a trusted proxy: entries left of it are whatever the client
    chose to send.

    The access log has method, path, status and duration only: query strings and bodies may hold
    addresses or other personal data and are never logged.
    """

    def __init__(
        self,
        app,
        *,
        max_bytes: int,
        trusted_proxies: tuple[str, ...] = (),
        body_timeout_s: float = 60.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self.trusted = tuple(ipaddress.ip_network(net) for net in trusted_proxies)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"{_PREFIX}{next(_NUMBERS):08x}"
        scope.setdefault("state", {})["request_id"] = request_id
        if self.trusted and scope.get("client"):
            client = forwarded_client(scope["client"][0], _forwarded_for(scope), self.trusted)
            scope["client"] = (client, scope["client"][1])
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                # How long the server took to answer (W3C Server-Timing; browsers show it): a
                # client can tell the server's time from the time spent on the way.
                took = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", f"app;dur={took:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _too_large(send_with_id, self.max_bytes)
        else:
            received = 0
            exceeded: _Refusal | None = None
            responded = False
            body_done = False
            deadline = time.monotonic() + self.body_timeout_s

            async def limited_receive():
                nonlocal received, exceeded, body_done
                if body_done:  # waiting for a disconnect: no deadline
                    return await receive()
                try:
                    message = await asyncio.wait_for(receive(), deadline - time.monotonic())
                except TimeoutError:
                    exceeded = _BodyTooSlow()
                    raise exceeded from None
                if message["type"] == "http.request":
                    body_done = not message.get("more_body", False)
                    received += len(message.get("body", b""))
                    if received > self.max_bytes:
                        exceeded = _BodyTooLarge()
                        raise exceeded
                return message

            async def send_unless_exceeded(message) -> None:
                # The app may catch the error of an oversized streamed body and answer with its
                # own error; the 413 replaces that answer.
                nonlocal responded
                if exceeded is not None and not responded:
                    return
                responded = True
                await send_with_id(message)

            with contextlib.suppress(_Refusal):
                await self.app(scope, limited_receive, send_unless_exceeded)
            if isinstance(exceeded, _BodyTooLarge) and not responded:
                await _too_large(send_with_id, self.max_bytes)
            elif isinstance(exceeded, _BodyTooSlow) and not responded:
                await _answer(
                    send_with_id,
                    408,
                    f"request body not received within {self.body_timeout_s:g} s",
                    "request_timeout",
                    # The rest of the body is not read: the connection cannot serve another.
                    close=True,
                )
        log.info(
            "%s %s %s %.1fms id=%s",
            scope["method"],
            scope["path"],
            status_holder["status"],
            (time.perf_counter() - started) * 1000,
            request_id,
        )


def forwarded_client(
    peer: str,
    forwarded: list[str],
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, then the rightmost hop of
    ``forwarded`` (X-Forwarded-For, left to right) that is not one; a hop that is no address
    ends the walk at the proxy that passed it on."""
    client = peer
    for hop in [peer, *reversed(forwarded)]:
        try:
            address = ipaddress.ip_address(hop.strip())
        except ValueError:
            return client
        client = str(address)
        if not any(address in network for network in trusted):
            return client
    return client


def _forwarded_for(scope) -> list[str]:
    hops: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            hops.extend(value.decode("latin-1").split(","))
    return hops


class _Refusal(Exception):
    pass


class _BodyTooLarge(_Refusal):
    pass


class _BodyTooSlow(_Refusal):
    pass


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send, limit: int) -> None:
    await _answer(send, 413, f"request body larger than {limit} bytes", "payload_too_large")


async def _answer(send, status: int, detail: str, code: str, *, close: bool = False) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
