"""Typed DC_ input variables and OUT_ output variables of a Job Template.

One place knows the types: how a definition is checked when a template is saved and
how a value given at run time becomes the string the job sees in its environment.
"""
from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Any

from .errors import ValidationError

INPUT_NAME_RE = re.compile(r"^DC_[A-Za-z0-9_]+$")
OUTPUT_NAME_RE = re.compile(r"^OUT_[A-Za-z0-9_]+$")


class InputType(StrEnum):
    """The types a DC_ input may have. Their values are what templates store and the
    API takes; the portal's forms are passed this class rather than spelling them."""
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    PATH = "path"


TYPES = tuple(t.value for t in InputType)
MAX_VALUE_LEN = 100_000
TRUE_WORDS = {"true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off"}


def coerce(spec: dict, value: Any, field: str) -> str:
    """Check ``value`` against the input's type; return it as the job will see it.

    Path values come back as the relative path given; ``runs`` resolves them inside
    the experiment. Strings are passed through exactly, whatever they contain.
    """
    kind = spec["type"]
    if kind == InputType.STRING:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            else:
                raise ValidationError("must be a string", field)
        if "\0" in value:
            raise ValidationError("must not contain NUL bytes", field)
        if len(value) > MAX_VALUE_LEN:
            raise ValidationError(f"is longer than {MAX_VALUE_LEN} characters", field)
        return value
    if kind == InputType.INTEGER:
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return str(int(value))
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        raise ValidationError(f"must be a whole number, got {value!r}", field)
    if kind == InputType.NUMBER:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            raise ValidationError(f"must be a number, got {value!r}", field)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    if kind == InputType.BOOLEAN:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return "true" if value.strip().lower() in TRUE_WORDS else "false"
        raise ValidationError(f"must be true or false, got {value!r}", field)
    if kind == InputType.CHOICE:
        if not isinstance(value, str) or value not in spec.get("choices", []):
            raise ValidationError(f"must be one of {spec.get('choices', [])}, got {value!r}", field)
        return value
    if kind == InputType.PATH:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("must be a path inside the experiment", field)
        if value.startswith("/") or "\0" in value or ".." in value.split("/"):
            raise ValidationError("must be a relative path inside the experiment, without '..'", field)
        return value
    raise ValidationError(f"unknown type {kind!r}", field)


def _checked_name(item: Any, where: str, pattern: re.Pattern, prefix: str, seen: set[str]) -> str:
    """The ``name`` of one input/output definition: prefixed, well-formed, not repeated."""
    if not isinstance(item, dict):
        raise ValidationError("must be an object", where)
    name = item.get("name")
    if not isinstance(name, str) or not pattern.match(name):
        raise ValidationError(
            f"must start with {prefix} followed by letters, digits or '_' (got {name!r})", f"{where}.name")
    if name in seen:
        raise ValidationError(f"{name} is defined twice", f"{where}.name")
    seen.add(name)
    return name


def check_inputs(raw: Any) -> list[dict]:
    """Validate input definitions; return them in a normal form."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationError("must be a list", "inputs")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(raw):
        where = f"inputs[{i}]"
        name = _checked_name(item, where, INPUT_NAME_RE, "DC_", seen)
        kind = item.get("type", InputType.STRING.value)
        kind = kind.lower() if isinstance(kind, str) else kind
        if kind not in TYPES:
            raise ValidationError(f"must be one of {list(TYPES)} (got {item.get('type')!r})", f"{where}.type")
        spec = {
            "name": name, "type": kind,
            "description": item.get("description") or "",
            "advanced": bool(item.get("advanced", False)),
            "choices": [], "default": None,
        }
        if not isinstance(spec["description"], str):
            raise ValidationError("must be a string", f"{where}.description")
        if not isinstance(item.get("advanced", False), bool):
            raise ValidationError("must be true or false", f"{where}.advanced")
        if kind == InputType.CHOICE:
            choices = item.get("choices")
            if (not isinstance(choices, list) or not choices
                    or not all(isinstance(c, str) and c for c in choices)):
                raise ValidationError("a choice input needs a non-empty list of strings", f"{where}.choices")
            if len(set(choices)) != len(choices):
                raise ValidationError("choices must be distinct", f"{where}.choices")
            spec["choices"] = choices
        elif item.get("choices") not in (None, []):
            raise ValidationError("only a choice input has choices", f"{where}.choices")
        default = item.get("default")
        if default is not None and not (kind == InputType.PATH and default == ""):
            spec["default"] = coerce(spec, default, f"{where}.default")
        out.append(spec)
    return out


def check_outputs(raw: Any) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationError("must be a list", "outputs")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(raw):
        where = f"outputs[{i}]"
        name = _checked_name(item, where, OUTPUT_NAME_RE, "OUT_", seen)
        description = item.get("description") or ""
        if not isinstance(description, str):
            raise ValidationError("must be a string", f"{where}.description")
        out.append({"name": name, "description": description})
    return out


# Characters kept of one OUT_ value; a longer one is cut and the job gets a note.
MAX_OUTPUT_VALUE = 64 * 1024


def parse_outputs_file(data: bytes, notes: list[str] | None = None) -> dict[str, str]:
    """Read the NUL-separated ``NAME=value`` records a job leaves in ``outputs.env``.

    The job wrote it, so it is hostile input: bytes that are not UTF-8 are replaced,
    names that are not ``OUT_`` names are ignored, values are cut at MAX_OUTPUT_VALUE
    (said in ``notes``). None of it can change the job's status.
    """
    values: dict[str, str] = {}
    for record in data.split(b"\0"):
        if not record:
            continue
        name, sep, value = record.partition(b"=")
        key = name.decode("utf-8", "replace")
        if sep and OUTPUT_NAME_RE.match(key):
            text = value.decode("utf-8", "replace")
            if len(text) > MAX_OUTPUT_VALUE:
                text = text[:MAX_OUTPUT_VALUE]
                if notes is not None:
                    notes.append(f"{key}: longer than {MAX_OUTPUT_VALUE // 1024} KiB, cut")
            values[key] = text
    return values
