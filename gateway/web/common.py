"""Helpers shared by the API blueprints: the context, the JSON body, the signed-in user."""
from __future__ import annotations

import json
from functools import wraps
from pathlib import PurePosixPath

from flask import Response, current_app, jsonify, request, send_file, session
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms.validators import ValidationError as WTFValidationError

from ..errors import Forbidden, Unauthorized, ValidationError
from ..validation import get_int

# Every request body is bounded before it is parsed: JSON and forms by this, uploads
# (views marked with ``accepts_upload``) by the configured max_upload_mb.
MAX_BODY_BYTES = 4 * 2**20


def accepts_upload(view):
    """Mark a view whose body is a file upload (bounded by max_upload_mb, not MAX_BODY_BYTES)."""
    view.accepts_upload = True
    return view


def ctx():
    return current_app.extensions["gateway"]


MAX_JSON_DEPTH = 64


def _check_json(payload) -> None:
    """No string (key or value) holds NUL, and nothing is nested deeper than
    MAX_JSON_DEPTH; walked with a stack, since Python's own recursion would give out
    first (json.loads parses deeper than that on Python 3.13)."""
    stack = [(payload, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            # The body as a whole is the problem (a 65-level path would name nothing).
            raise ValidationError(f"is nested more than {MAX_JSON_DEPTH} levels deep", "body")
        if isinstance(value, str):
            if "\0" in value:
                # No stored text may hold NUL (PostgreSQL refuses it, C tools stop at it).
                raise ValidationError("must not contain NUL characters", where or "body")
        elif isinstance(value, dict):
            for k, v in value.items():
                sub = f"{where}.{k}" if where else str(k)
                if "\0" in str(k):
                    raise ValidationError("must not contain NUL characters", sub.replace("\0", ""))
                stack.append((v, sub, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))


def body() -> dict:
    limit = request.max_content_length
    # A chunked body has no length to refuse up front: werkzeug stops reading it at the
    # limit, so a body that fills the limit is one that went over it.
    if limit and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()  # the one 413 answer, in web/__init__
    if not request.is_json:
        raise ValidationError("the request body must be a JSON object "
                              "(Content-Type: application/json)", "body")
    try:
        payload = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        raise ValidationError("the request body is not valid JSON", "body") from None
    _check_json(payload)
    if payload is None:
        raise ValidationError("the request body must be a JSON object", None)
    if not isinstance(payload, dict):
        raise ValidationError("the request body must be a JSON object", None)
    return payload


def optional_body() -> dict:
    """The JSON object of a request whose body may be left out (``{}`` then)."""
    return body() if request.get_data(cache=True).strip() else {}


def authenticated(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user or not current_user.is_authenticated:
            raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
        # An empty Authorization header is no header: the cookie is what authenticates.
        bearer = request.headers.get("Authorization", "").strip()
        if request.method not in ("GET", "HEAD", "OPTIONS") and not bearer:
            # A browser session (cookie) changing something: it must prove it is our page.
            try:
                validate_csrf(request.headers.get("X-CSRFToken", ""))
            except WTFValidationError:
                raise Forbidden("missing or wrong X-CSRFToken header for a session request") from None
        return view(*args, **kwargs)
    return wrapper


def sign_in(u) -> None:
    """Start a browser session for ``u`` (the portal and POST /auth/login)."""
    from ..auth import sessions

    session.clear()  # a new session id: nothing carried over from before the login
    login_user(u)
    session["sid"] = sessions.start(u)


def sign_out() -> None:
    """End this browser session on the server too: the cookie, or a copy, stops working."""
    from ..auth import sessions

    sessions.end(session.get("sid"))
    logout_user()
    session.clear()


def client_address() -> str | None:
    return request.remote_addr


def user():
    # The real model behind flask-login's proxy, for peewee queries.
    return current_user._get_current_object()


def log_response(job) -> Response:
    """The job's log from ``?offset=`` on, with where to continue and whether it can grow."""
    from .. import jobs

    offset = get_int(dict(request.args), "offset", default=0, minimum=0)
    chunk, next_offset = jobs.read_log(ctx(), job, offset)
    response = Response(chunk, mimetype="text/plain")
    response.headers["X-Log-Offset"] = str(next_offset)
    response.headers["X-Job-Status"] = job.status
    response.headers["X-Job-Finalized"] = "true" if job.finalized else "false"
    return response


def output_file_response(job, relative: str) -> Response:
    """One output file of the job as a download, streamed from a descriptor opened
    without following links (see job_files)."""
    from .. import jobs

    f = jobs.open_output_file(ctx(), job, relative)
    return send_file(f, as_attachment=True, download_name=PurePosixPath(relative).name,
                     mimetype="application/octet-stream")


def created(payload: dict):
    return jsonify(payload), 201
