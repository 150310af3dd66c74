"""API: hand-picked runs of one template side by side, as JSON or as a CSV download.

``ids`` is a comma-separated list (``?ids=12,13,14``) or repeated (``?ids=12&ids=13``,
as a form's checkboxes send it).
"""
from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from .. import comparison
from .common import authenticated, ctx, user

compare_api = Blueprint("api_compare", __name__, url_prefix="/api/v1")


def _comparison() -> comparison.Comparison:
    return comparison.compare(ctx(), user(), request.args.getlist("ids"))


@compare_api.get("/jobs/compare")
@authenticated
def compare_jobs():
    return jsonify(comparison.comparison_dict(_comparison()))


@compare_api.get("/jobs/compare.csv")
@authenticated
def compare_jobs_csv():
    c = _comparison()
    # Template names are letters, digits, . _ and - already; kept so in the header anyway.
    name = re.sub(r"[^A-Za-z0-9._-]", "_", c.template.name)
    return Response(comparison.comparison_csv(c), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}-{len(c.jobs)}-runs.csv"'})
