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

ACL_TYPE_ACCESS = 0x8000
ACL_TYPE_DEFAULT = 0x4000


class AclError(OSError):
    pass


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


def set_acl(path: Path, access: str, default: str | None = None) -> None:
    """Replace ``path``'s ACL with ``access`` (the mask is computed when left out) and,
    for a folder, its default ACL with ``default`` (None: remove any)."""
    lib = _lib()
    for kind, text in ((ACL_TYPE_ACCESS, access), (ACL_TYPE_DEFAULT, default)):
        if text is None:
            if lib.acl_delete_def_file(os.fsencode(path)) != 0:
                raise _fail("removing the default ACL", path)
            continue
        acl = ctypes.c_void_p(lib.acl_from_text(text.encode()))
        if not acl.value:
            raise _fail(f"bad ACL {text!r}", path)
        try:
            if _needs_mask(text) and lib.acl_calc_mask(ctypes.byref(acl)) != 0:
                raise _fail("computing the ACL mask", path)
            if lib.acl_set_file(os.fsencode(path), kind, acl) != 0:
                raise _fail("setting the ACL", path)
        finally:
            lib.acl_free(acl)


# TEXT_ABBREVIATE | TEXT_NUMERIC_IDS is not wanted: names read better in `gateway check`.
_TEXT_ABBREVIATE = 0x10


def get_acl(path: Path, default: bool = False) -> str:
    """``path``'s ACL (or default ACL) in short text form, entries comma-separated."""
    lib = _lib()
    acl = lib.acl_get_file(os.fsencode(path), ACL_TYPE_DEFAULT if default else ACL_TYPE_ACCESS)
    if not acl:
        raise _fail("reading the ACL", path)
    try:
        text = lib.acl_to_any_text(acl, None, b",", _TEXT_ABBREVIATE)
        if not text:
            raise _fail("printing the ACL", path)
        try:
            return ctypes.string_at(text).decode()
        finally:
            lib.acl_free(text)
    finally:
        lib.acl_free(acl)


def normalize(text: str) -> frozenset[str]:
    """An ACL text as a set of entries, for comparing what is with what should be."""
    return frozenset(e.strip() for e in text.split(",") if e.strip())
