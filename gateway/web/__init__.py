"""Flask side: token/session authentication, the JSON error handler, the blueprints."""
from __future__ import annotations

import logging

from flask import Flask, g, has_request_context, jsonify, render_template, request
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from ..context import in_a_thread
from ..errors import GatewayError, Unauthorized, ValidationError
from ..models import User
from ..share_links import redact
from ..users import user_for_token
from .common import MAX_BODY_BYTES

logger = logging.getLogger(__name__)
login_manager = LoginManager()


@login_manager.user_loader
def _load_user(user_id: str):
    from flask import session

    from ..auth import sessions

    # A signed cookie alone is not enough: its session must still exist on the server
    # (logout deletes it).
    if not sessions.valid(session.get("sid"), int(user_id)):
        return None
    return User.get_or_none(User.id == int(user_id))


@login_manager.request_loader
def _user_from_request(req):
    header = req.headers.get("Authorization", "").strip()
    # Tokens are for the API; the portal's pages go by the session cookie alone (and an
    # error page must not fail again on a bad token while it renders).
    if not header or not req.path.startswith("/api/"):
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return user_for_token(token.strip())


# flask-login wants these on the user object; our peewee model stays plain.
User.is_authenticated = property(lambda self: True)
User.is_active = property(lambda self: True)
User.is_anonymous = property(lambda self: False)
User.get_id = lambda self: str(self.id)


csrf = CSRFProtect()
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


def _dt(value) -> str:
    """A timestamp (datetime or the API's ISO text) as the pages show it, in UTC."""
    if not value:
        return "—"
    if isinstance(value, str):
        return value.replace("T", " ").rstrip("Z")[:16] + " UTC"
    return value.strftime("%Y-%m-%d %H:%M") + " UTC"


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _after_the_answer(work) -> None:
    """Work a request leaves for later (a sweep's task folders) starts once its answer
    has gone out, so that it never slows the answer down; outside a request, at once."""
    if has_request_context():
        g.setdefault("later", []).append(work)
    else:
        in_a_thread(work)


def init_app(app: Flask) -> None:
    from .api import api
    from .api_callbacks import callbacks
    from .api_compare import compare_api
    from .api_people import people
    from .api_sharing import sharing
    from .portal import portal

    login_manager.init_app(app)
    login_manager.login_view = "portal.login"
    # Forms carry a CSRF token; the API is exempt from the form check because it
    # authenticates with bearer tokens, and checks the header itself when a browser
    # session calls it (see web.common.authenticated).
    csrf.init_app(app)
    # The job callbacks authenticate with the job's own token, never a session.
    for blueprint in (api, people, sharing, compare_api, callbacks):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    app.register_blueprint(portal)
    app.jinja_env.filters["dt"] = _dt
    ctx = app.extensions["gateway"]
    if ctx.run_later is in_a_thread:  # tests may run it at once instead
        ctx.run_later = _after_the_answer

    @app.after_request
    def _start_later_work(response):
        works = g.pop("later", None)
        if works:
            response.call_on_close(lambda: [in_a_thread(work) for work in works])
        return response

    app.jinja_env.filters["nonempty"] = lambda m: {k: v for k, v in m.items() if v}

    def _page(code: int, title: str, message: str):
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(GatewayError)
    def _gateway_error(e: GatewayError):
        if not _is_api():
            titles = {401: "Please log in", 403: "Not allowed", 404: "Not found", 503: "Unavailable"}
            return _page(e.status, titles.get(e.status, "Cannot do that"), e.message)
        body = e.to_dict()
        if getattr(e, "job_id", None) is not None:
            body["job_id"] = e.job_id
        response = jsonify(body)
        response.status_code = e.status
        if e.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gateway"'
        if e.status == 503:
            response.headers["Retry-After"] = "30"
        if hasattr(e, "retry_after"):
            response.headers["Retry-After"] = str(e.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        if not _is_api():
            return _page(e.code or 500, e.name, e.description or e.name)
        if e.code == 413:
            limit = request.max_content_length or 0
            response = jsonify({"error": f"the request body is larger than {limit // 2**20} MB",
                                "field": "body"})
            response.status_code = 413
            return response
        response = jsonify({"error": e.description or e.name, "field": None})
        response.status_code = e.code or 500
        return response

    @app.before_request
    def _no_nul_in_the_url():
        if "\0" in request.path:
            raise ValidationError("must not contain NUL characters", "path")
        for key, value in request.args.items(multi=True):
            if "\0" in key or "\0" in value:
                raise ValidationError("must not contain NUL characters", key.replace("\0", ""))

    @app.before_request
    def _bound_the_body():
        # Before anything parses it: JSON and forms are small; only upload views take more.
        if not getattr(app.view_functions.get(request.endpoint), "accepts_upload", False):
            request.max_content_length = MAX_BODY_BYTES

    @app.after_request
    def _security_headers(response):
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        # The portal loads only its own script and style sheet; API answers and job
        # files are never a page to run.
        h.setdefault("Content-Security-Policy", PAGE_CSP if response.mimetype == "text/html" else DATA_CSP)
        return response

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        logger.exception("unhandled error on %s %s", request.method, redact(request.path))
        if not _is_api():
            return _page(500, "Something went wrong",
                         "The administrator can find the details in the gateway's log.")
        return jsonify({"error": "internal error; the administrator can find details in the log",
                        "field": None}), 500
