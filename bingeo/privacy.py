"""Statistical disclosure control: what counts of people may be shown to whom."""

from __future__ import annotations

# Counts of people (members, recipients) from 1 to 4 could point at a household: roles without
# the right to read members see them as this text instead.
SUPPRESS_BELOW = 5
SUPPRESSED = "< 5"


def people_count(count: int, *, exact: bool) -> int | str:
    """``count`` as shown: exact for a role that may read the people themselves, else
    ``SUPPRESSED`` when it lies between 1 and ``SUPPRESS_BELOW`` - 1 (0 is shown: it names
    nobody)."""
    if exact or count == 0 or count >= SUPPRESS_BELOW:
        return count
    return SUPPRESSED
