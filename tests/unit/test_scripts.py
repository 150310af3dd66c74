"""Static checks of the shell scripts in scripts/ and their shared library scripts/lib/,
and the pure parts of the LDAP -> Unix sync (no services needed)."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"
SCRIPTS = sorted(p for p in SCRIPTS_DIR.iterdir()
                 if p.is_file() and p.read_text().startswith("#!/usr/bin/env bash"))
LIBRARIES = sorted((SCRIPTS_DIR / "lib").rglob("*.sh"))
BASH_FILES = SCRIPTS + LIBRARIES
IDS = [str(p.relative_to(SCRIPTS_DIR)) for p in BASH_FILES]
MAX_LINES = 400
# `cmd <"$f" 2>/dev/null` opens $f before stderr is redirected, so a file that
# vanished in between (a /proc entry of a process that just exited) prints an error.
LATE_STDERR = re.compile(r'<\s*"[^"]*"\s+2>\s*/dev/null')
FUNCTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(\)\s*\{", re.M)


@pytest.mark.parametrize("path", BASH_FILES, ids=IDS)
def test_script_parses(path):
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", BASH_FILES, ids=IDS)
def test_stderr_is_redirected_before_the_input_is_opened(path):
    bad = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
           if LATE_STDERR.search(line)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", BASH_FILES, ids=IDS)
def test_no_bash_file_is_too_long_to_read(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_every_script_starts_with_the_shared_preamble(path):
    text = path.read_text()
    assert re.search(r'^source "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/lib/common.sh"$', text, re.M)
    assert "set -Eeuo pipefail" not in text  # common.sh sets it, once


def test_no_function_is_defined_twice():
    """A helper lives in one file: the shared ones in common.sh, each service's own in
    its library folder. Only the commands of each script (cmd_start, usage, ...)
    share names, one per script."""
    where: dict[str, list[str]] = {}
    for path in BASH_FILES:
        for name in FUNCTION.findall(path.read_text()):
            where.setdefault(name, []).append(str(path.relative_to(SCRIPTS_DIR)))
    twice = {name: files for name, files in where.items()
             if len(files) > 1 and not all("/" not in f for f in files)}
    assert not twice, twice
    per_script = {name: files for name, files in where.items() if len(files) != len(set(files))}
    assert not per_script, per_script


def test_no_awk_reads_ldif():
    """The people and groups of the directory are read with ldap3 (scripts/lib/ldap/
    unix_users.py), not by cutting ldapsearch's LDIF apart in awk."""
    for path in BASH_FILES:
        text = path.read_text()
        assert 'RS = ""' not in text and "ldif_plain" not in text, path


def test_the_virtualenv_exists_before_dev_ldap_starts():
    """dev-ldap's Unix sync runs with the virtualenv's Python (ldap3): every script that
    starts it runs scripts/install first."""
    for name in ("test", "up"):
        text = (SCRIPTS_DIR / name).read_text()
        assert text.index('scripts/install"') < text.index('scripts/dev-ldap" start'), name


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_shellcheck():
    proc = subprocess.run(["shellcheck", "-x", *[p.name for p in SCRIPTS]], cwd=SCRIPTS_DIR,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


# ---------------------------------------------------------------- the LDAP -> Unix sync

@pytest.fixture(scope="module")
def sync():
    path = SCRIPTS_DIR / "lib" / "ldap" / "unix_users.py"
    spec = importlib.util.spec_from_file_location("unix_users", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["unix_users"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["unix_users"]


def person(uid, number, **extra):
    entry = {"uid": [uid], "uidnumber": [str(number)], "gidnumber": [str(number)],
             "homedirectory": [f"/home/{uid}"], "loginshell": ["/bin/bash"], "cn": [uid.title()]}
    entry.update(extra)
    return entry


def test_people_keep_the_directory_order_and_values(sync):
    people = sync.people_from_entries([person("bob", 20002), person("alice", 20001)])
    assert [(p.name, p.uid, p.gid, p.home, p.shell, p.gecos) for p in people] == [
        ("bob", 20002, 20002, "/home/bob", "/bin/bash", "Bob"),
        ("alice", 20001, 20001, "/home/alice", "/bin/bash", "Alice")]


def test_a_person_gets_a_usable_home_shell_and_name(sync):
    [p] = sync.people_from_entries([person("carol", 20003, homedirectory=["carol"],
                                           loginshell=["/no/such/shell"], cn=["Carol: C\nChen", "other"])])
    assert (p.home, p.shell, p.gecos) == ("/home/carol", "/bin/bash", "Carol  C Chen")
    [p] = sync.people_from_entries([person("dave", 20004, homedirectory=[], loginshell=[])])
    assert (p.home, p.shell) == ("/home/dave", "/bin/bash")


@pytest.mark.parametrize("entry", [
    person("Root", 20001), person("x" * 33, 20001), person("bad name", 20001),
    person("low", 999), person("high", 60000), person("nan", "2x"),
    {**person("nogid", 20001), "gidnumber": []},
])
def test_people_who_cannot_be_unix_users_are_skipped_with_a_warning(sync, entry, capsys):
    assert sync.people_from_entries([entry]) == []
    assert "not a usable Unix user" in capsys.readouterr().err


def test_entries_without_a_name_are_skipped_quietly(sync, capsys):
    assert sync.people_from_entries([{"uidnumber": ["20001"]}]) == []
    assert sync.groups_from_entries([{"gidnumber": ["30001"]}]) == []
    assert capsys.readouterr().err == ""


def test_groups_keep_their_members_in_the_directory_order(sync, capsys):
    groups = sync.groups_from_entries([
        {"cn": ["xray-team"], "gidnumber": ["30001"], "memberuid": ["bob", "alice"]},
        {"cn": ["alice"], "gidnumber": ["20001"]},
        {"cn": ["bad group"], "gidnumber": ["30002"], "memberuid": ["alice"]},
    ])
    assert groups == [sync.Group("xray-team", 30001, ("bob", "alice")), sync.Group("alice", 20001, ())]
    assert "skipping LDAP group 'bad group'" in capsys.readouterr().err
