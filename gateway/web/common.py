"""Helpers shared by the API blueprints: the context, the JSON body, the signed-in user."""
from __future__ import annotations

from functools import wraps

from flask import Response, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError as WTFValidationError

from ..errors import Forbidden, Unauthorized, ValidationError
from ..validation import get_int


def ctx():
    return current_app.extensions["gateway"]


def body() -> dict:
    payload = request.get_json(silent=True)
    if payload is None:
        raise ValidationError("the request body must be a JSON object", None)
    if not isinstance(payload, dict):
        raise ValidationError("the request body must be a JSON object", None)
    return payload


def authenticated(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user or not current_user.is_authenticated:
            raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
        if request.method not in ("GET", "HEAD", "OPTIONS") and "Authorization" not in request.headers:
            # A browser session (cookie) changing something: it must prove it is our page.
            try:
                validate_csrf(request.headers.get("X-CSRFToken", ""))
            except WTFValidationError:
                raise Forbidden("missing or wrong X-CSRFToken header for a session request") from None
        return view(*args, **kwargs)
    return wrapper


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


def created(payload: dict):
    return jsonify(payload), 201
