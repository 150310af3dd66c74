"""The web portal: server-rendered pages over the same services as the REST API.

Each page module registers its views on this blueprint; templates live in
``templates/`` beside it and static files in ``static/``.
"""
from __future__ import annotations

from flask import Blueprint

from ...hours import format_hours, format_seconds_as_hours

portal = Blueprint("portal", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static/portal")
# Hours are shown one way everywhere: {{ d.cpu_hours|hours }}, {{ j.cpu_seconds|seconds_as_hours }}.
portal.add_app_template_filter(format_hours, "hours")
portal.add_app_template_filter(format_seconds_as_hours, "seconds_as_hours")

from . import (  # noqa: E402,F401
    views_auth,
    views_compare,
    views_environments,
    views_jobs,
    views_licenses,
    views_projects,
    views_runs,
    views_sweeps,
    views_templates,
)
