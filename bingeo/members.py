"""Members of a network: the rules a registration must meet (pure)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bingeo.errors import InvalidInput

LANGUAGES = ("nl", "fr", "de")
CHANNELS = ("email", "sms", "voice")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9 ./()-]{8,20}$")


@dataclass(frozen=True)
class MemberInput:
    """What a coordinator registers about a member (personal data)."""

    name: str
    language: str
    channels: tuple[str, ...]
    consent_at: dt.datetime
    email: str | None = None
    phone: str | None = None


def check_member(member: MemberInput, *, now: dt.datetime | None = None) -> MemberInput:
    """The member with normalised fields, or ``InvalidInput`` listing every problem at once."""
    now = now or dt.datetime.now(dt.UTC)
    problems = []
    name = member.name.strip()
    if not name:
        problems.append("name is empty")
    language = member.language.strip().lower()
    if language not in LANGUAGES:
        problems.append(f"language {member.language!r} is not one of {', '.join(LANGUAGES)}")
    channels = tuple(dict.fromkeys(c.strip().lower() for c in member.channels))
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        problems.append(f"unknown channels {unknown}; use {', '.join(CHANNELS)}")
    if not channels:
        problems.append("at least one channel is needed")
    email = (member.email or "").strip() or None
    phone = (member.phone or "").strip() or None
    if email and not EMAIL.match(email):
        problems.append("email is not an e-mail address")
    if phone and not PHONE.match(phone):
        problems.append("phone is not a phone number")
    if "email" in channels and not email:
        problems.append("channel email needs an e-mail address")
    if ("sms" in channels or "voice" in channels) and not phone:
        problems.append("channels sms and voice need a phone number")
    consent_at = member.consent_at
    if consent_at.tzinfo is None:
        consent_at = consent_at.replace(tzinfo=dt.UTC)
    if consent_at > now + dt.timedelta(minutes=5):
        problems.append("consent date lies in the future")
    if problems:
        raise InvalidInput("member not valid: " + "; ".join(problems))
    return MemberInput(name, language, channels, consent_at, email, phone)
