"""Sign in and out (LDAP or local account); the person's API tokens and notification
settings."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import flash, make_response, redirect, render_template, request, url_for

from ... import notifications, users
from ...auth.login import login
from ...errors import GatewayError, Invalid
from ..common import client_address, sign_in, sign_out
from . import portal
from .common import ctx, login_required, me


def _safe_next(target: str | None) -> str:
    # Only same-site paths: a crafted ?next= must not send people elsewhere.
    if target and not urlparse(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("portal.jobs")


@portal.route("/login", methods=["GET", "POST"], endpoint="login")
def login_page():
    failure, username = None, ""
    if request.method == "POST":
        username = request.form.get("username", "")
        try:
            user = login(ctx(), username, request.form.get("password", ""), client_address())
        except GatewayError as e:
            failure = e
        else:
            sign_in(user)
            return redirect(_safe_next(request.args.get("next")))
    page = render_template("login.html", error=failure and failure.message, username=username)
    response = make_response(page, failure.status if failure else 200)
    if failure is not None and hasattr(failure, "retry_after"):
        response.headers["Retry-After"] = str(failure.retry_after)
    return response


@portal.post("/logout")
def logout():
    sign_out()
    return redirect(url_for("portal.login"))


@portal.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    new_token = None
    if request.method == "POST":
        if request.form.get("revoke"):
            users.revoke_token(me(), request.form["revoke"])
            flash("Token revoked.")
            return redirect(url_for("portal.tokens"))
        new_token = users.create_token(me(), request.form.get("name", "")[:100])
    return _settings_page(new_token=new_token)


def _settings_page(new_token=None, secret=None, errors=None, status=200):
    return render_template("tokens.html", tokens=users.list_tokens(me()), new_token=new_token,
                           notify=notifications.settings_dict(me()), secret=secret,
                           errors=errors or {}), status


@portal.post("/settings/notifications")
@login_required
def notification_settings():
    """One's own default for job ends, and webhook (its new secret shown once)."""
    try:
        form = request.form
        shown = notifications.set_settings(ctx(), me(), {"on_job_end": form.get("on_job_end", ""),
                                                         "webhook_url": form.get("webhook_url", "").strip()})
    except Invalid as e:
        return _settings_page(errors={p.field or "_": p.message for p in e.problems}, status=e.status)
    except GatewayError as e:
        return _settings_page(errors={e.field or "_": e.message}, status=e.status)
    if shown.get("webhook_secret"):
        return _settings_page(secret=shown["webhook_secret"])
    flash("Notification settings saved.")
    return redirect(url_for("portal.tokens") + "#notifications")
