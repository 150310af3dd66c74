"""Reading what a job wrote, as hostile input.

Everything under a job's ``run/`` and ``output/`` folders was written by the person's
code, which may have replaced any file with a symlink (to the gateway's database or
secret key), a FIFO (to hang the poller), a device, or a file too large to read. These
functions walk down from the job folder with directory descriptors, never follow a
link (``O_NOFOLLOW`` on every component), open without blocking, accept regular files
and folders only, and read at most a given number of bytes. Nothing else in the
gateway opens a file a job wrote.
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import UnsafeJobFile, ValidationError

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer for ever.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


def _parts(relative: str | PurePosixPath) -> list[str]:
    parts = [p for p in PurePosixPath(relative).parts if p not in ("", ".")]
    if not parts or any(p in ("..", "/") or "\0" in p for p in parts):
        raise ValidationError("must be a relative path inside the job folder", "path")
    return parts


def open_folder(base: Path, parts: list[str] | tuple[str, ...], create: bool = False) -> int:
    """A descriptor of ``base/parts...`` reached without following any link (made on
    the way when ``create``): for writing into a folder hostile code may also write."""
    fd = os.open(base, _DIR_FLAGS)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise ValidationError("must be a relative path", "path")
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
            nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(base: Path, relative: str | PurePosixPath) -> BinaryIO:
    """An open binary file for ``base/relative`` (the caller closes it), or UnsafeJobFile.

    ``base`` is a folder the gateway made (a job folder); nothing below it is trusted.
    """
    parts = _parts(relative)
    try:
        dfd = open_folder(base, parts[:-1])
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        raise UnsafeJobFile(f"{'/'.join(parts)} is not a readable file of this job", "path") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeJobFile(f"{'/'.join(parts)} is not a regular file", "path")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(base: Path, relative: str, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a job file, or None if it is missing or not a plain
    file (a job that never wrote it, or put something else there)."""
    try:
        with open_file(base, relative) as f:
            return f.read(limit)
    except UnsafeJobFile:
        return None


def read_range(base: Path, relative: str, offset: int, size: int) -> bytes:
    """``size`` bytes from ``offset`` (for tailing a log); empty if unreadable."""
    try:
        with open_file(base, relative) as f:
            f.seek(offset)
            return f.read(size)
    except UnsafeJobFile:
        return b""


def read_tail(base: Path, relative: str, size: int) -> bytes:
    """The last ``size`` bytes; empty if unreadable."""
    try:
        with open_file(base, relative) as f:
            end = os.fstat(f.fileno()).st_size
            f.seek(max(0, end - size))
            return f.read(size)
    except UnsafeJobFile:
        return b""


@dataclass
class Listing:
    """The regular files found under a job folder, and what was passed over and why."""

    files: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    truncated: bool = False


def _decodable(name: str) -> bool:
    try:
        name.encode("utf-8")  # undecodable bytes come back as lone surrogates
        return True
    except UnicodeEncodeError:
        return False


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


MAX_DEPTH = 32


def list_files(base: Path, relative: str, max_entries: int) -> Listing:
    """Regular files under ``base/relative`` (paths relative to it, with sizes), found
    without following links. Links, FIFOs, sockets, devices, undecodable names and
    folders nested deeper than MAX_DEPTH are noted in ``skipped``; past ``max_entries``
    entries the listing stops and says it is ``truncated``."""
    out = Listing()
    try:
        top = open_folder(base, _parts(relative))
    except OSError:
        return out
    seen = 0

    def walk(dfd: int, prefix: str, depth: int) -> None:
        nonlocal seen
        entries = []
        with os.scandir(dfd) as it:
            for entry in it:
                seen += 1
                if seen > max_entries:
                    out.truncated = True
                    break
                entries.append(entry)
        for entry in sorted(entries, key=lambda e: e.name):
            rel = prefix + entry.name
            if not _decodable(entry.name):
                out.skipped.append(f"{prefix}<name that is not UTF-8>: skipped")
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.files.append({"path": rel, "size": st.st_size})
            elif not stat.S_ISDIR(st.st_mode):
                out.skipped.append(f"{rel}: {_kind(st.st_mode)}, skipped")
            elif depth >= MAX_DEPTH:
                out.skipped.append(f"{rel}: nested too deep, skipped")
            elif not out.truncated:
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dfd)
                except OSError:
                    out.skipped.append(f"{rel}: not readable, skipped")
                    continue
                try:
                    walk(sub, rel + "/", depth + 1)
                finally:
                    os.close(sub)

    try:
        walk(top, "", 0)
    finally:
        os.close(top)
    out.files.sort(key=lambda f: f["path"])
    return out


def copy_files(base: Path, relative: str, listing: Listing, dest: Path) -> list[str]:
    """Copy the listed regular files from ``base/relative`` into the new folder ``dest``
    (made here), re-opening each without following links; returns what was skipped
    because it changed kind since it was listed or the job took the gateway's read
    access away."""
    skipped = []
    dest.mkdir(mode=0o755)
    for item in listing.files:
        target = dest / item["path"]
        try:
            with open_file(base, f"{relative}/{item['path']}") as src:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        except UnsafeJobFile as e:
            why = ("the job made it unreadable" if isinstance(e.__cause__, PermissionError)
                   else "changed while it was copied")
            skipped.append(f"{item['path']}: {why}, skipped")
    return skipped
