"""Public view-only links to one job's results.

The token (256 random bits) is shown once; only its SHA-256 is stored. A link shows
the job's status, inputs, output variables, output files and log, and nothing else.
"""
from __future__ import annotations

import re
from datetime import timedelta

from . import access
from .db import iso, utcnow
from .errors import LinkGone, NotFound
from .job_reasons import canceller, shown_reason
from .models import Job, ShareLink, User
from .tokens import hash_token, new_token
from .validation import by_id, get_int

MAX_HOURS = 24 * 365


# A link's token is a password: no log line may keep it.
# (The API's /api/v1/shared/<token>... and the portal's public page /s/<token>.)
_TOKEN_IN_PATH = re.compile(r"(/shared/|/s/)[^/?#\s\"]+")


def redact(text: str) -> str:
    """``text`` (a path, a request line) with every share-link token replaced."""
    return _TOKEN_IN_PATH.sub(r"\1<token>", text)


def create(user: User, job: Job, body: dict | None) -> tuple[ShareLink, str]:
    access.require(user, "job.share", job, "job")
    hours = get_int(body or {}, "expires_in_hours", minimum=1, maximum=MAX_HOURS)
    token = new_token()
    link = ShareLink.create(job=job, token_hash=hash_token(token), created_by=user,
                            expires_at=utcnow() + timedelta(hours=hours) if hours else None)
    return link, token


def list_links(user: User, job: Job) -> list[ShareLink]:
    access.require(user, "job.share", job, "job")
    return list(job.share_links.order_by(ShareLink.id))


def revoke(user: User, job: Job, link_id) -> None:
    access.require(user, "job.share", job, "job")
    link = by_id(ShareLink, link_id, ShareLink.job == job)
    if link is None:
        raise NotFound(f"job {job.id} has no share link {link_id}", "link")
    link.job = job
    access.require(user, "share_link.revoke", link, "share link", "link")
    if link.revoked_at is None:
        ShareLink.update(revoked_at=utcnow()).where(ShareLink.id == link.id).execute()


def job_for_token(token: str) -> Job:
    """The job a share link shows; refused if the token is unknown, expired or revoked."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise NotFound("no such share link", "token")
    link = ShareLink.get_or_none(ShareLink.token_hash == hash_token(token))
    if link is None:
        raise NotFound("no such share link", "token")
    if link.revoked_at is not None:
        raise LinkGone("this share link was revoked", "token")
    if link.expires_at is not None and link.expires_at <= utcnow():
        raise LinkGone("this share link has expired", "token")
    return link.job


def link_dict(link: ShareLink, token: str | None = None, base_url: str = "") -> dict:
    out = {"id": link.id, "created_by": link.created_by.username, "created_at": iso(link.created_at),
           "expires_at": iso(link.expires_at), "revoked_at": iso(link.revoked_at)}
    if token:
        out["token"] = token
        out["url"] = f"{base_url.rstrip('/')}/api/v1/shared/{token}"
    return out


def public_job_dict(job: Job) -> dict:
    """What a link shows: never who ran it (or cancelled it), the licence, or anything
    to act on."""
    return {
        "id": job.id, "name": job.name,
        "template_version": job.template_version.version if job.template_version_id else None,
        "status": job.status, "reason": "cancelled" if canceller(job) else shown_reason(job),
        "exit_code": job.exit_code, "inputs": job.inputs, "output_variables": job.output_variables,
        "output_files": job.output_files, "submitted_at": iso(job.submitted_at),
        "started_at": iso(job.started_at), "ended_at": iso(job.ended_at),
    }
