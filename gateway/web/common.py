"""Helpers shared by the API blueprints: the context, the JSON body, the signed-in user."""
from __future__ import annotations

from functools import wraps

from flask import current_app, jsonify, request
from flask_login import current_user

from ..errors import Unauthorized, ValidationError


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
        return view(*args, **kwargs)
    return wrapper


def user():
    # The real model behind flask-login's proxy, for peewee queries.
    return current_user._get_current_object()


def created(payload: dict):
    return jsonify(payload), 201
