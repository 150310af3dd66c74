"""Small checks shared by the services: names, types of JSON values."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import Invalid, ValidationError

T = TypeVar("T")

# Whole numbers as the databases store them (SQLite INTEGER, PostgreSQL BIGINT).
MAX_DB_INT = 2**63 - 1
_ASCII_INT = re.compile(r"-?[0-9]+", re.ASCII)
_ID = re.compile(r"[0-9]{1,19}", re.ASCII)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RULE = "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


class Problems:
    """Collects the validation errors of a body's independent fields instead of stopping
    at the first, then raises them together (``errors.Invalid``)."""

    def __init__(self) -> None:
        self.found: list[ValidationError] = []

    def check(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``fn(*args)``; on a ValidationError, records it and returns None."""
        try:
            return fn(*args, **kwargs)
        except ValidationError as e:
            self.found.extend(getattr(e, "problems", [e]))
            return None

    def add(self, error: ValidationError) -> None:
        self.found.append(error)

    def raise_any(self) -> None:
        if self.found:
            raise Invalid(self.found)


def check_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValidationError(NAME_RULE, field)
    return value


def get_str(body: dict, key: str, field: str | None = None, *, required: bool = False,
            default: str = "", max_len: int = 10_000) -> str:
    field = field or key
    value = body.get(key)
    if value is None:
        if required:
            raise ValidationError("is required", field)
        return default
    if not isinstance(value, str):
        raise ValidationError("must be a string", field)
    if required and not value.strip():
        raise ValidationError("must not be empty", field)
    if len(value) > max_len:
        raise ValidationError(f"is longer than {max_len} characters", field)
    return value


def get_bool(body: dict, key: str, field: str | None = None, default: bool = False) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError("must be true or false", field or key)
    return value


def get_int(body: dict, key: str, field: str | None = None, *, required: bool = False,
            default: int | None = None, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    field = field or key
    value = body.get(key)
    if value is None:
        if required:
            raise ValidationError("is required", field)
        return default
    if isinstance(value, str) and _ASCII_INT.fullmatch(value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError("must be a whole number", field)
    if abs(value) > MAX_DB_INT:
        raise ValidationError("is out of range", field)
    if minimum is not None and value < minimum:
        raise ValidationError(f"must be at least {minimum}", field)
    if maximum is not None and value > maximum:
        raise ValidationError(f"must be at most {maximum}", field)
    return value


def parse_id(value) -> int | None:
    """An id from a URL or a body: ASCII digits only (``int()`` also takes ``١٢`` and
    ``１２``) and within the database's integer range; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _ID.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_DB_INT:
        return value
    return None


def by_id(model, value, *conditions):
    """``model`` row with id ``value`` (text from a URL) matching ``conditions``, or None."""
    key = parse_id(value)
    if key is None:
        return None
    return model.get_or_none(model.id == key, *conditions)


def require_dict(body: Any, field: str | None = None) -> dict:
    if not isinstance(body, dict):
        raise ValidationError("must be a JSON object", field)
    return body
