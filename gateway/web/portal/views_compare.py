"""Runs picked in the Jobs table, side by side: the inputs they share, the inputs that
differ and the OUT_ values, sortable, with a CSV download."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for

from ... import access, comparison
from ...errors import NotFound, ValidationError
from . import portal
from .common import ctx, login_required, me


def _back_to_jobs():
    """The Jobs table the person came from (its filters and page kept), else the first
    page. Only a path of our own Jobs page is followed, never another address."""
    jobs_path = url_for("portal.jobs")
    came_from = urlsplit(request.referrer or "")
    if came_from.netloc == request.host and came_from.path == jobs_path:
        return redirect(jobs_path + (f"?{came_from.query}" if came_from.query else ""))
    return redirect(jobs_path)


@portal.get("/jobs/compare")
@login_required
def jobs_compare():
    try:
        c = comparison.compare(ctx(), me(), request.args.getlist("ids"))
    except (ValidationError, NotFound) as e:
        # Picked too few, or runs of different templates: said on the table they were
        # picked in, to pick again.
        flash(f"Cannot compare: {e.message}")
        return _back_to_jobs()
    ids = ",".join(str(j.id) for j in c.jobs)
    return render_template("compare.html", c=c, ids=ids,
                           csv_url=url_for("api_compare.compare_jobs_csv", ids=ids),
                           can_view_template=access.can(me(), "template.view", c.template))
