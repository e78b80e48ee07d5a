"""The alert dispatcher (``bingeo worker``): delivers the outbox through channel adapters.

Exactly once across crashes, as far as the receiving side can tell:

1. a batch of due recipients is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and marked
   ``sending`` with a lease, and that is committed *before* any network call;
2. each delivery carries the recipient's idempotency key: the e-mail's ``Message-ID`` and the
   gateway's ``Idempotency-Key`` header are derived from it and never change between attempts;
3. the outcome is committed per recipient (``sent``, back to ``queued`` with exponential backoff,
   or ``failed``);
4. a dispatcher that dies between 1 and 3 leaves rows in ``sending``; once their lease expires
   another (or the restarted) dispatcher sends them again with the same key, and the receiver
   (mail server, SMS gateway) drops what it has already accepted.

So no recipient is lost (at least once, by the lease) and none is delivered twice (the key).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

import httpx
from sqlalchemy import Engine

from bingeo.alerts import render_email, render_sms
from bingeo.db import alerts as repo
from bingeo.settings import Settings

log = logging.getLogger("bingeo.dispatch")
MAX_BACKOFF_S = 3600.0


class DeliveryError(Exception):
    """A delivery that did not go through; ``permanent`` ones are not retried."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient, as an adapter sends it."""

    recipient_id: int
    alert_id: int
    channel: str
    destination: str
    language: str
    subject: str
    body: str
    idempotency_key: str

    @property
    def message_id(self) -> str:
        """The e-mail Message-ID: the same on every attempt for this recipient."""
        return f"<{self.idempotency_key}@alerts.bingeo>"


class EmailAdapter:
    """E-mail over SMTP (host, port, STARTTLS and login from the settings)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, delivery: Delivery) -> None:
        """Send one e-mail; SMTP 5xx answers are permanent failures, the rest transient."""
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_from
        message["To"] = delivery.destination
        message["Subject"] = delivery.subject
        message["Message-ID"] = delivery.message_id
        message["Date"] = formatdate(usegmt=True)
        message["X-Bingeo-Alert"] = str(delivery.alert_id)
        message.set_content(delivery.body)
        # After set_content, which clears the Content-* headers.
        message["Content-Language"] = delivery.language
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
                smtp.ehlo()
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = all(code >= 500 for code in codes)
            raise DeliveryError(f"recipient refused ({codes})", permanent=permanent) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}", permanent=exc.smtp_code >= 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}") from exc


class GatewayAdapter:
    """SMS and voice through an HTTP gateway: JSON POST with an ``Idempotency-Key`` header."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.Client(timeout=settings.smtp_timeout_s)

    def send(self, delivery: Delivery) -> None:
        """POST one message; 4xx answers (but 408, 409, 425, 429) are permanent failures."""
        url = self.settings.sms_gateway_url
        if not url:
            raise DeliveryError("no SMS gateway configured (BINGEO_SMS_GATEWAY_URL)")
        headers = {"Idempotency-Key": delivery.idempotency_key}
        if self.settings.sms_gateway_key:
            headers["Authorization"] = f"Bearer {self.settings.sms_gateway_key}"
        payload = {
            "channel": delivery.channel,
            "to": delivery.destination,
            "language": delivery.language,
            "text": delivery.body,
            "reference": delivery.idempotency_key,
        }
        try:
            response = self.client.post(url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"gateway: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return
        code = response.status_code
        transient = code >= 500 or code in (408, 409, 425, 429)
        raise DeliveryError(f"gateway answered {code}", permanent=not transient)


@dataclass
class WorkerStats:
    """What a dispatcher did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


Adapter = Callable[[Delivery], None]


def adapters_from(settings: Settings) -> dict[str, Adapter]:
    """The channel adapters configured by ``settings``."""
    email = EmailAdapter(settings)
    gateway = GatewayAdapter(settings)
    return {"email": email.send, "sms": gateway.send, "voice": gateway.send}


def dispatch_once(
    engine: Engine,
    settings: Settings,
    adapters: dict[str, Adapter],
    stats: WorkerStats | None = None,
) -> int:
    """Claim one batch of due deliveries and deliver it; returns how many were claimed."""
    stats = stats if stats is not None else WorkerStats()
    with engine.begin() as connection:
        ids = repo.claim_due(
            connection, batch=settings.dispatch_batch, lease_s=settings.dispatch_lease_s
        )
    # Committed: from here on a crash leaves the rows in 'sending' until the lease expires.
    if not ids:
        return 0
    stats.claimed += len(ids)
    with engine.connect() as connection:
        rows = repo.deliveries(connection, ids)
    for row in rows:
        _deliver(engine, settings, adapters, row, stats)
    with engine.begin() as connection:
        repo.finish_alerts(connection, sorted({int(r.alert_id) for r in rows}))
    return len(ids)


def run_worker(
    engine: Engine,
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    until_idle: bool = False,
    adapters: dict[str, Adapter] | None = None,
    progress: Callable[[str], None] | None = None,
) -> WorkerStats:
    """Deliver due alerts until ``stop`` is set (or, with ``until_idle``, nothing is pending)."""
    stop = stop or threading.Event()
    adapters = adapters or adapters_from(settings)
    stats = WorkerStats()
    while not stop.is_set():
        try:
            claimed = dispatch_once(engine, settings, adapters, stats)
        except Exception as exc:  # the database went away: keep the dispatcher alive
            log.error("dispatch round failed: %s", type(exc).__name__)
            stats.errors.append(type(exc).__name__)
            stop.wait(settings.dispatch_poll_s)
            continue
        if claimed:
            if progress:
                progress(f"sent {stats.sent}, retried {stats.retried}, failed {stats.failed}")
            continue
        if until_idle:
            with engine.connect() as connection:
                if repo.pending_count(connection) == 0:
                    break
        stop.wait(settings.dispatch_poll_s)
    return stats


def start_in_thread(engine: Engine, settings: Settings) -> tuple[threading.Thread, threading.Event]:
    """Run the dispatcher in a daemon thread (``bingeo serve``); set the event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(engine, settings),
        kwargs={"stop": stop},
        name="bingeo-dispatcher",
        daemon=True,
    )
    thread.start()
    return thread, stop


def backoff_s(settings: Settings, attempts: int) -> float:
    """Delay before the next attempt: base, doubled per attempt, capped at an hour."""
    return min(MAX_BACKOFF_S, settings.dispatch_backoff_s * 2 ** max(0, attempts - 1))


# private helpers -------------------------------------------------------------------------------


def _deliver(
    engine: Engine, settings: Settings, adapters: dict[str, Adapter], row, stats: WorkerStats
) -> None:
    channel = str(getattr(row.channel, "value", row.channel))
    kind = str(getattr(row.kind, "value", row.kind))
    try:
        if not row.destination:
            raise DeliveryError(
                "recipient removed or without contact details for this channel", permanent=True
            )
        if channel == "email":
            subject, body = render_email(
                kind, row.messages, row.language, row.network_name, row.headline
            )
        else:
            subject, body = "", render_sms(row.messages, row.language)
        adapters[channel](
            Delivery(
                recipient_id=row.id,
                alert_id=row.alert_id,
                channel=channel,
                destination=row.destination,
                language=row.language,
                subject=subject,
                body=body,
                idempotency_key=row.idempotency_key,
            )
        )
    except DeliveryError as exc:
        with engine.begin() as connection:
            if exc.permanent or row.attempts >= settings.dispatch_max_attempts:
                repo.mark_failed(connection, row.id, exc.reason)
                stats.failed += 1
            else:
                repo.mark_retry(connection, row.id, exc.reason, backoff_s(settings, row.attempts))
                stats.retried += 1
        log.warning("delivery %s (%s) failed: %s", row.id, channel, exc.reason)
        return
    with engine.begin() as connection:
        repo.mark_sent(connection, row.id)
    stats.sent += 1


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
