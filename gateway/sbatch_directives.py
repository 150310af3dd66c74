"""Reading the ``#SBATCH`` lines of a plain script sent through the sbatch wrapper."""
from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from .errors import ValidationError

# Long option -> short form sbatch also accepts.
SHORT = {"time": "t", "output": "o", "error": "e", "job-name": "J", "account": "A",
         "partition": "p", "chdir": "D", "cpus-per-task": "c", "array": "a", "input": "i"}
LONG = {v: k for k, v in SHORT.items()}


# Words that, alone on an #SBATCH line, start another component of a heterogeneous job.
HET_SEPARATORS = ("hetjob", "packjob")


def _directive_words(script: str) -> Iterator[list[str]]:
    """The words of each line of the leading ``#SBATCH`` block."""
    for line in script.splitlines()[1:] if script.startswith("#!") else script.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("#SBATCH")):
            continue
        if not stripped.startswith("#SBATCH"):
            break  # sbatch stops reading directives at the first command
        try:
            yield shlex.split(stripped[len("#SBATCH"):], comments=True)
        except ValueError:
            continue


def is_heterogeneous(script: str) -> bool:
    return any(words[:1] and words[0] in HET_SEPARATORS for words in _directive_words(script))


def parse_directives(script: str) -> dict[str, str]:
    """Options of the leading ``#SBATCH`` block, as sbatch reads them (long names)."""
    found: dict[str, str] = {}
    for words in _directive_words(script):
        i = 0
        while i < len(words):
            word = words[i]
            if word.startswith("--"):
                key, eq, value = word[2:].partition("=")
                if not eq and i + 1 < len(words) and not words[i + 1].startswith("-"):
                    value, i = words[i + 1], i + 1
                found[key] = value
            elif word.startswith("-") and len(word) >= 2:
                key = LONG.get(word[1], word[1])
                value = word[2:]
                if not value and i + 1 < len(words):
                    value, i = words[i + 1], i + 1
                found[key] = value
            i += 1
    return found


def parse_time_limit(text: str, field: str = "time") -> int:
    """Slurm's time formats -> whole minutes (rounded up).

    ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.
    """
    text = text.strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m or text.upper() in ("INFINITE", "UNLIMITED"):
        raise ValidationError(f"{text!r} is not a Slurm time limit (e.g. 90, 2:00:00, 1-12)", field)
    days, a, b, c = m.groups()
    if days is not None:
        hours, minutes, seconds = int(a), int(b or 0), int(c or 0)
        total = ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    elif c is not None:
        total = (int(a) * 60 + int(b)) * 60 + int(c)
    elif b is not None:
        total = int(a) * 60 + int(b)
    else:
        total = int(a) * 60
    return max(1, -(-total // 60))
