"""Helpers for portal views: sign-in requirement, the current user, form errors."""
from __future__ import annotations

from functools import wraps

from flask import current_app, redirect, request, url_for
from flask_login import current_user


def ctx():
    return current_app.extensions["gateway"]


def me():
    return current_user._get_current_object()


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapper
