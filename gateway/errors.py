"""Every error the gateway defines, in one place.

Services raise GatewayError subclasses; the web layer turns each into one JSON
response. Each names the field it is about (or None when it is about the request as a
whole), so an API client or a form can point at the right input. The few others (ACL
calls, the command-line client, the config file) are at the end.
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


class Invalid(ValidationError):
    """Several fields are wrong at once (a run form, say): every problem is kept, so a
    form can show each next to its field and an API client can fix them in one go.
    The first problem is the error's own message and field, as for a single error."""

    def __init__(self, problems: list[ValidationError]):
        super().__init__(problems[0].message, problems[0].field)
        self.problems = problems

    def to_dict(self) -> dict:
        return {**super().to_dict(),
                "problems": [{"field": p.field, "error": p.message} for p in self.problems]}


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


class DirectoryUnavailable(GatewayError):
    """The LDAP directory did not answer or refused the gateway's own bind."""

    status = 503


class LinkGone(GatewayError):
    """A share link that existed but was revoked or has expired."""

    status = 410


class UnsafeJobFile(NotFound):
    """A job file that is missing, or is not a plain file reached without links."""


class SlurmError(GatewayError):
    """Slurm refused or failed a request (bad account, bad partition...)."""

    status = 422


class SlurmUnavailable(SlurmError):
    """The controller or the accounting daemon did not answer: try again later."""

    status = 503


class SlurmNoAnswer(SlurmUnavailable):
    """A command timed out: Slurm may or may not have acted on it (a submit may exist)."""


class AclError(OSError):
    """libacl refused to read or set a folder's ACL (errno, message, path)."""


class ClientError(Exception):
    """The command-line client's failure: no gateway configured, unreachable, or the
    API's error (``field`` and HTTP ``status`` when it gave them)."""

    def __init__(self, message: str, field: str | None = None, status: int | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.status = status


class ConfigError(Exception):
    """The gateway configuration is wrong; raised at start, naming the file (``source``,
    added by the loader), the key and what was expected, e.g.
    ``/etc/slurm-gateway/gateway.toml: slurm.poll_interval_secnds: unknown key; did you
    mean slurm.poll_interval_seconds?``."""

    def __init__(self, message: str, key: str | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.key = key
        self.source = source

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.key, self.message) if part)
