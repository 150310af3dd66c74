"""A sweep's page: live counts by status, the results table (swept inputs and OUT_
values per task, sortable), CSV download, cancel and re-run of the failed tasks."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for

from ... import access, sweeps
from ...errors import GatewayError
from ...hours import format_seconds_as_hours
from ...slurm.states import FAILED, STATUSES
from . import portal
from .common import ctx, login_required, me


@portal.get("/sweeps/<int:sweep_id>")
@login_required
def sweep(sweep_id):
    s = sweeps.get_sweep(ctx(), me(), sweep_id)
    rows = sweeps.task_rows(s)
    counts = sweeps.status_counts(rows)
    return render_template(
        "sweep.html", s=s, rows=rows, outputs=sweeps.output_names(s, rows), statuses=STATUSES, counts=counts,
        finished=all(j.finalized for j in rows),
        can_cancel=access.can(me(), "job.cancel", rows[0]),
        # A plain script's array is sent again by its author, not re-run from here.
        can_rerun=(s.template_id is not None and access.can(me(), "template.run", s.template)
                   and counts[FAILED] > 0))


@portal.get("/sweeps/<int:sweep_id>/live")
@login_required
def sweep_live(sweep_id):
    """What the sweep's page refreshes while tasks run: counts, and each task's status
    and OUT_ values (as text; the page puts them in with textContent)."""
    s = sweeps.get_sweep(ctx(), me(), sweep_id)
    rows = sweeps.task_rows(s)
    return jsonify({"counts": sweeps.status_counts(rows),
                    "finished": all(j.finalized for j in rows),
                    "tasks": {str(j.id): {"status": j.status, "outputs": j.output_variables,
                                          "cpu_hours": format_seconds_as_hours(j.cpu_seconds)}
                              for j in rows}})


@portal.post("/sweeps/<int:sweep_id>/act")
@login_required
def sweep_act(sweep_id):
    s = sweeps.get_sweep(ctx(), me(), sweep_id)
    try:
        if request.form.get("action") == "cancel":
            sweeps.cancel_sweep(ctx(), me(), s)
            flash(f"Sweep {s.id}: cancel sent to Slurm for every unfinished task.")
        elif request.form.get("action") == "rerun_failed":
            again = sweeps.rerun_failed(ctx(), me(), s)
            flash(f"Sweep {again.id} re-runs the failed tasks of sweep {s.id}.")
            return redirect(url_for("portal.sweep", sweep_id=again.id))
    except GatewayError as e:
        flash(f"Not done: {e.message}")
    return redirect(url_for("portal.sweep", sweep_id=s.id))
