"""Typed errors raised by services; the web layer turns each into one JSON response.

Every error names the field it is about (or None when it is about the request as a
whole), so an API client or a form can point at the right input.
"""
from __future__ import annotations


class GatewayError(Exception):
    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        return {"error": self.message, "field": self.field}


class ValidationError(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401


class Forbidden(GatewayError):
    status = 403


class NotFound(GatewayError):
    status = 404


class Conflict(GatewayError):
    status = 409


class PayloadTooLarge(GatewayError):
    status = 413


class TooManyRequests(GatewayError):
    """Refused for now (e.g. too many failed logins); ``retry_after`` says for how long."""

    status = 429

    def __init__(self, message: str, field: str | None = None, retry_after: int = 60):
        super().__init__(message, field)
        self.retry_after = retry_after


class SlurmError(GatewayError):
    """Slurm refused or failed a request (bad account, bad partition...)."""

    status = 422


class SlurmUnavailable(SlurmError):
    """The controller or the accounting daemon did not answer: try again later."""

    status = 503


class SlurmNoAnswer(SlurmUnavailable):
    """A command timed out: Slurm may or may not have acted on it (a submit may exist)."""


class ConfigError(Exception):
    """The gateway configuration is wrong; raised at start with the key that is wrong."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
