"""Bearer secrets (API tokens, share links, browser sessions): how one is made and how
it is stored.

A token is 256 random bits, shown once; the database keeps only its SHA-256, so a
copy of the database lets nobody in. Lookups hash what was presented and compare.
"""
from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str = "") -> str:
    """A fresh token: ``prefix`` and 32 random bytes, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the database stores for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()
