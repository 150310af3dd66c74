"""Results tables as CSV: a sweep's tasks, or any runs compared side by side.

Every cell of such a table may come from a job (its inputs, its OUT_ values), and
whatever a job wrote is hostile input: a spreadsheet opening the file must not run it
as a formula. The one rule for that, and the one CSV writer, live here.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

# Values a spreadsheet would run as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def cell(value: Any) -> str:
    """``value`` as a CSV cell: a value a spreadsheet would run as a formula is shown as
    text instead (a leading '); a plain number (-3.5, +2) stays a number."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def csv_text(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> str:
    """A header and rows as CSV text, every cell (the header's too) made safe by ``cell``."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([cell(v) for v in header])
    for row in rows:
        w.writerow([cell(v) for v in row])
    return out.getvalue()
