"""CPU and GPU time in hours: the one conversion from accounting's seconds and the one
way an amount of hours is shown to a person (portal pages, command-line client).

No database here, so the client can use it too; what an hour costs is in ``charging``.
"""
from __future__ import annotations

SECONDS_PER_HOUR = 3600


def hours(seconds: int | float) -> float:
    """Seconds as hours, as the API returns them (rounded to the second's precision)."""
    return round((seconds or 0) / SECONDS_PER_HOUR, 6)


def format_hours(value: float | None) -> str:
    """An amount of hours for people to read: four decimals (0.0003 h is about a second)."""
    return f"{value or 0:.4f}"


def format_seconds_as_hours(seconds: int | float | None) -> str:
    return format_hours(hours(seconds or 0))
