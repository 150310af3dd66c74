"""A running job tells the gateway it started or ended: POST /api/v1/jobs/<id>/callback.

The caller is a job script, not a person: it has no session and no bearer token, only
its own job's token in the ``X-Gateway-Job-Token`` header (job_callbacks). The answer
comes at once; the job's accounting is read in the background (see
``job_callbacks.Refresher``) and decides everything, so a job that lies gains nothing.
"""
from __future__ import annotations

import math
import threading

from flask import Blueprint, current_app, jsonify, request

from .. import job_callbacks
from ..errors import Forbidden, NotFound, TooManyRequests, ValidationError
from ..models import Job
from .common import body, ctx

callbacks = Blueprint("api_callbacks", __name__, url_prefix="/api/v1")
_setup_lock = threading.Lock()


def _state() -> tuple[job_callbacks.RateLimit, job_callbacks.Refresher]:
    """This process's rate limit and reader (made at the first callback, in the worker
    process that answers it: a thread started before gunicorn forks would not survive)."""
    ext = current_app.extensions
    with _setup_lock:
        if "job_callbacks" not in ext:
            ext["job_callbacks"] = (job_callbacks.RateLimit(), job_callbacks.Refresher(ctx()))
    return ext["job_callbacks"]


@callbacks.post("/jobs/<int:job_id>/callback")
def job_callback(job_id: int):
    config = ctx().config
    if not job_callbacks.enabled(config):
        raise NotFound("job callbacks are off on this gateway (no callback_url)", None)
    if not job_callbacks.token_matches(config, job_id, request.headers.get(job_callbacks.HEADER)):
        raise Forbidden(f"missing or wrong token for job {job_id}", job_callbacks.HEADER)
    limit, refresher = _state()
    wait = limit.wait_needed(job_id)
    if wait:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(f"job {job_id} called back too often: its status is read at the next "
                              f"poll", None, retry_after=seconds)
    event = body().get("event")
    if event not in job_callbacks.EVENTS:
        raise ValidationError(f"must be one of {', '.join(job_callbacks.EVENTS)}", "event")
    job = Job.select(Job.finalized).where(Job.id == job_id).first()
    # Unknown or already final: nothing to read (a token outlives a database reset).
    scheduled = job is not None and not job.finalized and refresher.request(job_id, event)
    return jsonify({"job": job_id, "event": event, "read": "scheduled" if scheduled else "none"}), 202
