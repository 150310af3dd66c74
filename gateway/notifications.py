"""Telling people: a job ended (or failed), a licence's budget is nearly or all used.

Deciding and sending are apart. What to send is decided in the transaction that makes
it true (a job's end is written by the poller with its messages, in the outbox table
``Notification``), each under a unique key, so a crash loses nothing and a second
decision makes no second row. The notifier (a scheduler job of its own, never the
poller's tick) sends what is due, claiming each row first, and marks it sent; a failed
send is retried with back-off. A crash between a send and its mark could repeat it:
each message carries its key (e-mail Message-ID, webhook ``X-Gateway-Delivery``) so the
receiver can tell.

Channels: e-mail to the person's address (from the directory) through the configured
SMTP server, and their own webhook, a JSON POST signed with HMAC-SHA256 of the body
under their secret (``X-Gateway-Signature: sha256=<hex>``).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import smtplib
import socket
import urllib.error
import urllib.request
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import urlsplit

from .config import Config, License
from .context import Context
from .db import database, utcnow
from .errors import ValidationError
from .hours import format_seconds_as_hours
from .models import Job, Notification, NotificationPreference, User
from .slurm.states import FAILED
from .validation import Problems, require_dict

logger = logging.getLogger(__name__)

CHOICES = ("none", "end", "failure")
CLAIM = timedelta(minutes=2)
BATCH = 50


# --- people's settings --------------------------------------------------------

def preference(user: User) -> NotificationPreference:
    return (NotificationPreference.get_or_none(NotificationPreference.user == user)
            or NotificationPreference(user=user))


def settings_dict(user: User, secret: str | None = None) -> dict:
    pref = preference(user)
    out = {"on_job_end": pref.on_job_end, "email": user.email or None,
           "webhook_url": pref.webhook_url or None, "webhook_secret_set": bool(pref.webhook_secret)}
    if secret:
        out["webhook_secret"] = secret  # shown once, when it is made
    return out


def set_settings(ctx: Context, user: User, body: dict) -> dict:
    """Change one's own default and webhook. A new webhook URL gets a new secret,
    shown in this answer only."""
    require_dict(body)
    problems = Problems()
    for key in body:
        if key not in ("on_job_end", "webhook_url"):
            problems.add(ValidationError("unknown field; expected on_job_end or webhook_url", key))
    pref = preference(user)
    on_end = body.get("on_job_end", pref.on_job_end)
    if on_end not in CHOICES:
        problems.add(ValidationError(f"must be one of {', '.join(CHOICES)}", "on_job_end"))
    url = body.get("webhook_url", pref.webhook_url) or ""
    if url:
        problems.check(check_webhook_url, url)
    problems.raise_any()
    secret = None
    if url and url != pref.webhook_url:
        secret = secrets.token_hex(32)
        pref.webhook_secret = secret
    if not url:
        pref.webhook_secret = ""
    pref.on_job_end, pref.webhook_url = on_end, url
    with database.atomic():
        if NotificationPreference.get_or_none(NotificationPreference.user == user) is None:
            pref.save(force_insert=True)
        else:
            pref.save()
    return settings_dict(user, secret)


def check_webhook_url(url: str, field: str = "webhook_url") -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise ValidationError("must be an http:// or https:// URL of at most 500 characters", field)


def choice_for_run(user: User, body: dict) -> str:
    """A run's ``notify``: as given, else the person's default."""
    given = body.get("notify")
    if given is None:
        return preference(user).on_job_end
    if given not in CHOICES:
        raise ValidationError(f"must be one of {', '.join(CHOICES)}", "notify")
    return given


# --- deciding -----------------------------------------------------------------

def wanted(notify: str, status: str) -> bool:
    """Whether a job's end with ``status`` is told, by its ``notify`` choice."""
    return notify == "end" or (notify == "failure" and status == FAILED)


def job_ended(config: Config, job_id: int) -> int:
    """In the transaction that writes a job's end: the messages its person asked for.
    Returns how many were decided (0 when they asked for none)."""
    job = Job.select(Job, User).join(User).where(Job.id == job_id).get()
    if not wanted(job.notify, job.status):
        return 0
    link = f"{config.public_url.rstrip('/')}/jobs/{job.id}"
    subject = f"Job {job.id} ({job.name}) {job.status}"
    lines = [f"Job {job.id} ({job.name}) ended: {job.status}.",
             f"Reason: {job.reason}" if job.reason else "",
             f"Charged to {job.license}: {format_seconds_as_hours(job.cpu_seconds)} CPU h, "
             f"{format_seconds_as_hours(job.gpu_seconds)} GPU h.",
             f"Details, log and outputs: {link}"]
    payload = {"event": "job.ended", "job": {
        "id": job.id, "name": job.name, "status": job.status, "reason": job.reason,
        "exit_code": job.exit_code, "slurm_job_id": job.slurm_job_id, "license": job.license,
        "cpu_seconds": job.cpu_seconds, "gpu_seconds": job.gpu_seconds, "url": link}}
    return _decide(job.user, f"job:{job.id}:ended", subject, "\n".join(x for x in lines if x), payload)


def budget_passed(config: Config, lic: License, sponsor: User, level: str, period_key: str,
                  used_percent: float) -> int:
    """Tell a licence's sponsor its budget passed the soft threshold or is used up,
    once per period and level."""
    link = f"{config.public_url.rstrip('/')}/licenses/{lic.name}"
    words = "is used up: jobs charged to it wait" if level == "limit" else \
        f"passed {used_percent:.0f} % used"
    subject = f"Licence {lic.name}: the budget {words.split(':')[0]}"
    body = (f"The budget of licence {lic.name} (Slurm account {lic.slurm_account}) {words}.\n"
            f"Raise it or follow its usage at {link}")
    payload = {"event": f"budget.{level}", "license": lic.name, "used_percent": round(used_percent, 1),
               "url": link}
    return _decide(sponsor, f"budget:{lic.name}:{period_key}:{level}", subject, body, payload)


def _decide(user: User, key: str, subject: str, body: str, payload: dict) -> int:
    pref = preference(user)
    made = 0
    for channel, wanted in (("email", bool(user.email)), ("webhook", bool(pref.webhook_url))):
        if not wanted:
            continue
        row_key = f"{key}:{channel}"
        if Notification.select().where(Notification.key == row_key).exists():
            continue  # decided before
        # The unique key still holds if two deciders meet: the second insert is ignored.
        Notification.insert(key=row_key, user=user, channel=channel, subject=subject[:300], body=body,
                            payload={**payload, "key": key}).on_conflict_ignore().execute()
        made += 1
    return made


# --- sending ------------------------------------------------------------------

def send_due(ctx: Context) -> int:
    """Send what is due (the notifier runs this); returns how many went out."""
    now = utcnow()
    cfg = ctx.config.notifications
    due = list(Notification.select().where(
        Notification.sent_at.is_null(), Notification.attempts < cfg.max_attempts,
        Notification.next_attempt_at <= now,
        Notification.claimed_until.is_null() | (Notification.claimed_until < now))
        .order_by(Notification.id).limit(BATCH))
    sent = 0
    for note in due:
        claimed = (Notification.update(claimed_until=now + CLAIM)
                   .where(Notification.id == note.id, Notification.sent_at.is_null(),
                          Notification.claimed_until.is_null() | (Notification.claimed_until < now))
                   .execute())
        if not claimed:
            continue  # another sender has it
        try:
            (_send_email if note.channel == "email" else _send_webhook)(ctx.config, note)
        except Exception as e:  # noqa: BLE001 - any failure is kept on the row and retried
            attempts = note.attempts + 1
            wait = timedelta(seconds=min(3600, 10 * 2 ** (attempts - 1)))
            Notification.update(attempts=attempts, last_error=str(e)[:1000], claimed_until=None,
                                next_attempt_at=utcnow() + wait).where(Notification.id == note.id).execute()
            logger.warning("notification %s (%s) not sent, attempt %s: %s", note.id, note.channel,
                           attempts, e)
            continue
        Notification.update(sent_at=utcnow(), attempts=note.attempts + 1, claimed_until=None,
                            last_error="").where(Notification.id == note.id).execute()
        sent += 1
    return sent


def _send_email(config: Config, note: Notification) -> None:
    cfg = config.notifications
    if not cfg.smtp_host:
        raise RuntimeError("no SMTP server is configured ([notifications] smtp_host)")
    user = User.get_by_id(note.user_id)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg.from_address, user.email, note.subject
    # The key in the Message-ID: a message sent again after a crash is the same message.
    msg["Message-ID"] = make_msgid(idstring=hashlib.sha256(note.key.encode()).hexdigest()[:24],
                                   domain=cfg.from_address.split("@", 1)[1])
    msg["X-Gateway-Delivery"] = note.key
    msg.set_content(note.body)
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_seconds) as smtp:
        if cfg.smtp_starttls:
            smtp.starttls()
        if cfg.smtp_user:
            smtp.login(cfg.smtp_user, Path(cfg.smtp_password_file).read_text().strip())
        smtp.send_message(msg)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_webhook(config: Config, note: Notification) -> None:
    pref = preference(User.get_by_id(note.user_id))
    if not pref.webhook_url:
        raise RuntimeError("the person has no webhook any more")
    _refuse_own_host(pref.webhook_url, config.notifications.webhook_allow_loopback)
    body = json.dumps(note.payload, sort_keys=True).encode()
    request = urllib.request.Request(pref.webhook_url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "slurm-gateway",
        "X-Gateway-Delivery": note.key, "X-Gateway-Signature": signature(pref.webhook_secret, body)})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=config.notifications.timeout_seconds) as r:
            r.read(1024)
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"the webhook answered HTTP {e.code}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: it could lead anywhere, the gateway's own host included."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} not followed", headers, fp)


def _refuse_own_host(url: str, allow_loopback: bool) -> None:
    """A webhook must not reach the gateway's own host or link-local addresses (a
    person could otherwise make the gateway POST to its own services or a cloud's
    metadata service)."""
    host = urlsplit(url).hostname or ""
    for info in socket.getaddrinfo(host, None):
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_link_local or addr.is_unspecified or addr.is_multicast or (
                addr.is_loopback and not allow_loopback):
            raise RuntimeError(f"the webhook's host {host} is {addr}, which the gateway does not call")
