"""The web portal: server-rendered pages over the same services as the REST API.

Each page module registers its views on this blueprint; templates live in
``templates/`` beside it and static files in ``static/``.
"""
from __future__ import annotations

from flask import Blueprint

portal = Blueprint("portal", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static/portal")

from . import views_auth, views_jobs, views_licenses, views_runs, views_templates  # noqa: E402,F401
