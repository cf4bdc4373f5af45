"""The monitor's own exceptions; each subclasses the builtin it resembles."""

from __future__ import annotations

__all__ = ["BadInputError", "ConfigError", "NotFoundError", "TrackerError"]


class TrackerError(Exception):
    """Base of every error the monitor raises on purpose."""


class ConfigError(TrackerError, ValueError):
    """The configuration is invalid; the message names the key."""


class BadInputError(TrackerError, ValueError):
    """An input file or argument is invalid; the message names the file, line and field."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class NotFoundError(TrackerError, LookupError):
    """A ticket, order or shipment named by the user does not exist."""
