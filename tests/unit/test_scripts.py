"""Static checks of the shell scripts in scripts/ (no services needed)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

SCRIPTS = sorted(p for p in (Path(__file__).resolve().parents[2] / "scripts").iterdir()
                 if p.is_file() and p.read_text().startswith("#!/usr/bin/env bash"))
# `cmd <"$f" 2>/dev/null` opens $f before stderr is redirected, so a file that
# vanished in between (a /proc entry of a process that just exited) prints an error.
LATE_STDERR = re.compile(r'<\s*"[^"]*"\s+2>\s*/dev/null')


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_parses(path):
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_stderr_is_redirected_before_the_input_is_opened(path):
    bad = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
           if LATE_STDERR.search(line)]
    assert not bad, "\n".join(bad)
