"""The Unix side of the dev directory: run as root by `scripts/dev-ldap start` with the
repository's virtualenv (for ldap3), once slapd answers.

It reads the people (posixAccount) and groups (posixGroup) from slapd as the service
account, then makes the local users and groups match:

- each person is a user with the directory's uid, primary gid, home, shell and name,
  a locked password (people log in to the gateway through LDAP, never to the machine)
  and a home folder of their own, mode 755;
- each person has a group named after them with their gidNumber;
- every posixGroup exists with its gidNumber and exactly its memberUid people;
- the group hpc-users holds exactly the people: the gateway's sudoers rule lets it
  submit jobs as them. Their Slurm associations are not made here: the gateway keeps
  them equal to licence membership (`gateway check --fix`).

Only what differs is changed (with useradd, usermod, groupadd, groupmod, gpasswd), so a
second run changes and prints nothing.
"""
from __future__ import annotations

import argparse
import grp
import os
import pwd
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROG = "dev-ldap"
HPC_USERS = "hpc-users"
SKEL = Path("/etc/skel")
DEFAULT_SHELL = "/bin/bash"
HOME_MODE = 0o755

NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
# Ids the directory may hand out: above the system range, below nobody's 65534.
FIRST_ID, LAST_ID = 1000, 59999

PERSON_ATTRIBUTES = ["uid", "uidNumber", "gidNumber", "homeDirectory", "loginShell", "cn"]
GROUP_ATTRIBUTES = ["cn", "gidNumber", "memberUid"]

Entry = dict[str, list[str]]  # attribute name in lower case -> values, in the server's order


@dataclass(frozen=True)
class Person:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    gecos: str


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...]


class SyncError(Exception):
    """A conflict the sync cannot resolve on its own (e.g. a uid held by someone else)."""


step = "make Unix users and groups for the LDAP people"


def say(text: str) -> None:
    print(f"{PROG}: {text}", flush=True)


def warn(text: str) -> None:
    print(f"{PROG}: warning: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the directory

def _first(entry: Entry, attribute: str) -> str:
    values = entry.get(attribute.lower()) or [""]
    # A passwd field holds no colon and no line break.
    return re.sub(r"[\n\t:]", " ", values[0])


def _usable_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and FIRST_ID <= int(text) <= LAST_ID


def people_from_entries(entries: list[Entry]) -> list[Person]:
    """The directory's people who can be Unix users, in the directory's order; a home
    that is not an absolute path becomes /home/NAME, a missing or unusable shell
    /bin/bash."""
    people = []
    for entry in entries:
        name, uid, gid = _first(entry, "uid"), _first(entry, "uidNumber"), _first(entry, "gidNumber")
        if not name:
            continue
        if not NAME.fullmatch(name) or not _usable_id(uid) or not _usable_id(gid):
            warn(f"skipping LDAP person '{name}' (uidNumber '{uid}', gidNumber '{gid}'): "
                 "not a usable Unix user")
            continue
        home = _first(entry, "homeDirectory")
        shell = _first(entry, "loginShell")
        people.append(Person(
            name=name, uid=int(uid), gid=int(gid),
            home=home if home.startswith("/") else f"/home/{name}",
            shell=shell if shell and os.access(shell, os.X_OK) else DEFAULT_SHELL,
            gecos=_first(entry, "cn")))
    return people


def groups_from_entries(entries: list[Entry]) -> list[Group]:
    """The directory's posixGroups that can be Unix groups, members in the directory's order."""
    groups = []
    for entry in entries:
        name, gid = _first(entry, "cn"), _first(entry, "gidNumber")
        if not name:
            continue
        if not NAME.fullmatch(name) or not _usable_id(gid):
            warn(f"skipping LDAP group '{name}' (gidNumber '{gid}'): not a usable Unix group")
            continue
        groups.append(Group(name=name, gid=int(gid), members=tuple(entry.get("memberuid", []))))
    return groups


def read_directory(args: argparse.Namespace) -> tuple[list[Entry], list[Entry]]:
    """The people and group entries, read as the service account (the way the gateway
    binds), over the plain port of our own slapd on 127.0.0.1."""
    import ldap3  # from the virtualenv; only needed here
    from ldap3.core.exceptions import LDAPException

    password = Path(args.password_file).read_text()  # all of it, as ldapsearch -y reads it
    server = ldap3.Server(args.url, get_info=ldap3.NONE, connect_timeout=5)
    conn = ldap3.Connection(server, user=args.bind_dn, password=password, read_only=True,
                            receive_timeout=20, raise_exceptions=True)

    def search(base: str, object_class: str, attributes: list[str], what: str) -> list[Entry]:
        try:
            conn.search(base, f"(objectClass={object_class})", attributes=attributes)
        except LDAPException as e:
            raise SyncError(f"cannot list {what} under {base} as {args.bind_dn}: {e}") from e
        return [{name.lower(): [v.decode("utf-8", "replace") for v in values]
                 for name, values in item["raw_attributes"].items()}
                for item in conn.response if item["type"] == "searchResEntry"]

    try:
        conn.bind()
    except LDAPException as e:
        raise SyncError(f"cannot list people under {args.people_base} as {args.bind_dn}: {e}") from e
    try:
        people = search(args.people_base, "posixAccount", PERSON_ATTRIBUTES, "people")
        groups = search(args.groups_base, "posixGroup", GROUP_ATTRIBUTES, "groups")
    finally:
        conn.unbind()
    if not people:
        raise SyncError(f"no posixAccount entries under {args.people_base}")
    return people, groups


# ---------------------------------------------------------------- the Unix side

def run(*cmd: str, failure: str | None = None) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SyncError(failure or f"command '{' '.join(cmd)}' exited {proc.returncode}")


def _group(key: str | int) -> grp.struct_group | None:
    try:
        return grp.getgrnam(key) if isinstance(key, str) else grp.getgrgid(key)
    except KeyError:
        return None


def _user(key: str | int) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(key) if isinstance(key, str) else pwd.getpwuid(key)
    except KeyError:
        return None


def _group_by_gid(gid: int) -> str:
    group = _group(gid)
    return group.gr_name if group else ""


def _user_by_uid(uid: int) -> str:
    user = _user(uid)
    return user.pw_name if user else ""


def ensure_group(name: str, gid: int) -> None:
    group = _group(name)
    current = group.gr_gid if group else None
    if current == gid:
        return
    other = _group_by_gid(gid)
    if current is None:
        if other:
            raise SyncError(f"cannot create group {name} with gid {gid}: "
                            f"gid {gid} belongs to group '{other}'")
        run("groupadd", "-g", str(gid), name)
        say(f"created group {name} ({gid})")
    else:
        if other:
            raise SyncError(f"group {name} has gid {current}, LDAP says {gid}, "
                            f"and gid {gid} belongs to group '{other}'")
        run("groupmod", "-g", str(gid), name, failure=f"groupmod -g {gid} {name} failed")
        say(f"changed gid of group {name}: {current} -> {gid}")


def password_locked(names: list[str]) -> dict[str, bool]:
    """Whether each user's password is locked ("!...") or absent ("*"): no password login."""
    out = subprocess.run(["getent", "shadow", *names], capture_output=True, text=True).stdout
    hashes = dict(line.split(":")[:2] for line in out.splitlines() if line.count(":") >= 1)
    return {name: hashes.get(name, "").startswith(("!", "*")) for name in names}


def ensure_user(person: Person, locked: bool) -> None:
    name, uid, gid = person.name, person.uid, person.gid
    entry = _user(name)
    if entry is None:
        other = _user_by_uid(uid)
        if other:
            raise SyncError(f"cannot create user {name} with uid {uid}: uid {uid} belongs to user '{other}'")
        run("useradd", "-u", str(uid), "-g", str(gid), "-d", person.home, "-M", "-s", person.shell,
            "-c", person.gecos, name)
        say(f"created user {name} ({uid}:{gid})")
        entry, locked = _user(name), password_locked([name])[name]
        assert entry is not None
    if entry.pw_uid != uid:
        other = _user_by_uid(uid)
        if other and other != name:
            raise SyncError(f"user {name} has uid {entry.pw_uid}, LDAP says {uid}, "
                            f"and uid {uid} belongs to user '{other}'")
        run("usermod", "-u", str(uid), name,
            failure=f"usermod -u {uid} {name} failed (does {name} have running processes?)")
        say(f"changed uid of user {name}: {entry.pw_uid} -> {uid}")
    if entry.pw_gid != gid:
        run("usermod", "-g", str(gid), name)
        say(f"{name}: primary group -> {gid}")
    if entry.pw_dir != person.home:
        run("usermod", "-d", person.home, name)
        say(f"{name}: home -> {person.home}")
    if entry.pw_shell != person.shell:
        run("usermod", "-s", person.shell, name)
    if entry.pw_gecos != person.gecos:
        run("usermod", "-c", person.gecos, name)
    if not locked:
        run("usermod", "-p", "!", name)
    ensure_home(person)


def ensure_home(person: Person) -> None:
    home = Path(person.home)
    owner = f"{person.uid}:{person.gid}"
    if not home.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", f"{SKEL}/.", f"{home}/"], stderr=subprocess.DEVNULL)
        run("chown", "-R", owner, str(home))
        say(f"created {home}")
    elif (home.stat().st_uid, home.stat().st_gid) != (person.uid, person.gid):
        # e.g. left by an earlier machine with other numbers
        run("chown", "-R", owner, str(home))
        say(f"fixed ownership of {home}")
    if home.stat().st_mode & 0o7777 != HOME_MODE:
        home.chmod(HOME_MODE)


def ensure_members(group: str, members: list[str] | tuple[str, ...]) -> None:
    """The group's supplementary members become exactly MEMBERS (those that are local
    users), in the given order."""
    want: list[str] = []
    for member in members:
        if member in want:
            continue
        if _user(member) is None:
            warn(f"group {group}: member {member} is not a local user, skipped")
            continue
        want.append(member)
    current = _group(group)
    if current is None or current.gr_mem != want:
        run("gpasswd", "-M", ",".join(want), group)
        say(f"members of group {group}: {','.join(want) or '(none)'}")


def ensure_hpc_users(people: list[Person]) -> None:
    if _group(HPC_USERS) is None:
        run("groupadd", "--system", HPC_USERS)
    group = _group(HPC_USERS)
    want = sorted(p.name for p in people)
    if group is None or sorted(group.gr_mem) != want:
        run("gpasswd", "-M", ",".join(want), HPC_USERS)
        say(f"members of group {HPC_USERS}: {','.join(want) or '(none)'}")


def sync(people: list[Person], groups: list[Group]) -> None:
    global step
    locked = password_locked([p.name for p in people])
    # Each person's own group first (named after them, gid = their gidNumber).
    for person in people:
        ensure_group(person.name, person.gid)
        ensure_user(person, locked[person.name])
    # Then every posixGroup, with its members.
    for group in groups:
        ensure_group(group.name, group.gid)
        ensure_members(group.name, group.members)
    step = f"the group {HPC_USERS}"
    ensure_hpc_users(people)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bind-dn", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--people-base", required=True)
    parser.add_argument("--groups-base", required=True)
    args = parser.parse_args(argv)
    try:
        people_entries, group_entries = read_directory(args)
        sync(people_from_entries(people_entries), groups_from_entries(group_entries))
    except (SyncError, OSError) as e:
        print(f"{PROG}: FAILED at step '{step}': {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
