"""POSIX ACLs on the folders the gateway owns, through libacl (ctypes, no build step).

libacl.so.1 is on every Debian system (coreutils needs it); the `acl` package adds
getfacl/setfacl for admins. ACLs are given and read in libacl's short text form,
e.g. ``u::rwx,u:alice:r-x,g::---,m::r-x,o::---``. Only folders the gateway made are
passed here (job folders, project and experiment folders), never a path a job chose.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache
from pathlib import Path

from .errors import AclError

ACL_TYPE_ACCESS = 0x8000
ACL_TYPE_DEFAULT = 0x4000


@cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("acl") or "libacl.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.acl_from_text.restype = ctypes.c_void_p
    lib.acl_from_text.argtypes = [ctypes.c_char_p]
    lib.acl_set_file.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    lib.acl_get_file.restype = ctypes.c_void_p
    lib.acl_get_file.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.acl_to_any_text.restype = ctypes.c_void_p
    lib.acl_to_any_text.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char, ctypes.c_int]
    lib.acl_calc_mask.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.acl_free.argtypes = [ctypes.c_void_p]
    lib.acl_delete_def_file.argtypes = [ctypes.c_char_p]
    return lib


def _fail(what: str, path: Path) -> AclError:
    err = ctypes.get_errno()
    return AclError(err, f"{what}: {os.strerror(err)}", str(path))


def _needs_mask(text: str) -> bool:
    """A mask is needed with named entries (u:NAME, g:NAME) and not given."""
    entries = [e.strip() for e in text.split(",")]
    named = any(e.split(":")[1] for e in entries if e[:1] in "ug" and e.count(":") == 2)
    return named and not any(e.startswith("m:") for e in entries)


def _from_text(text: str, path: Path | str = "") -> ctypes.c_void_p:
    """A libacl ACL from ``text``, with the mask computed when it is needed and not
    given (the caller frees it)."""
    lib = _lib()
    acl = ctypes.c_void_p(lib.acl_from_text(text.encode()))
    if not acl.value:
        raise _fail(f"bad ACL {text!r}", path)
    if _needs_mask(text) and lib.acl_calc_mask(ctypes.byref(acl)) != 0:
        lib.acl_free(acl)
        raise _fail("computing the ACL mask", path)
    return acl


# TEXT_ABBREVIATE without TEXT_NUMERIC_IDS: names read better in `gateway check`.
_TEXT_ABBREVIATE = 0x10


def _to_text(acl, path: Path | str = "") -> str:
    lib = _lib()
    text = lib.acl_to_any_text(acl, None, b",", _TEXT_ABBREVIATE)
    if not text:
        raise _fail("printing the ACL", path)
    try:
        return ctypes.string_at(text).decode()
    finally:
        lib.acl_free(text)


def set_acl(path: Path, access: str, default: str | None = None) -> None:
    """Replace ``path``'s ACL with ``access`` (the mask is computed when left out) and,
    for a folder, its default ACL with ``default`` (None: remove any)."""
    lib = _lib()
    for kind, text in ((ACL_TYPE_ACCESS, access), (ACL_TYPE_DEFAULT, default)):
        if text is None:
            if lib.acl_delete_def_file(os.fsencode(path)) != 0:
                raise _fail("removing the default ACL", path)
            continue
        acl = _from_text(text, path)
        try:
            if lib.acl_set_file(os.fsencode(path), kind, acl) != 0:
                raise _fail("setting the ACL", path)
        finally:
            lib.acl_free(acl)


def get_acl(path: Path, default: bool = False) -> str:
    """``path``'s ACL (or default ACL) in short text form, entries comma-separated."""
    lib = _lib()
    acl = lib.acl_get_file(os.fsencode(path), ACL_TYPE_DEFAULT if default else ACL_TYPE_ACCESS)
    if not acl:
        raise _fail("reading the ACL", path)
    try:
        return _to_text(acl, path)
    finally:
        lib.acl_free(acl)


def same(current: str, wanted: str) -> bool:
    """Whether an ACL read back (``get_acl``) is ``wanted`` as ``set_acl`` would set it:
    libacl parses and prints ``wanted`` (mask included), and the entries are compared."""
    acl = _from_text(wanted)
    try:
        printed = _to_text(acl)
    finally:
        _lib().acl_free(acl)
    return _entries(current) == _entries(printed)


def _entries(text: str) -> frozenset[str]:
    return frozenset(e.strip() for e in text.split(",") if e.strip())
