"""The Jobs table, Job details with its tabs, and the public share page."""
from __future__ import annotations

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for

from ... import access, efficiency, job_notes, job_reasons, jobs, share_links
from ...db import utcnow
from ...errors import GatewayError
from ...hours import format_seconds_as_hours
from ...models import Job, Template
from ...slurm.states import PENDING, STATUSES
from ...validation import parse_id
from . import portal
from .common import ctx, login_required, me

PER_PAGE = 50
# The Jobs table's filters, by their names in the URL and in jobs.list_jobs.
JOB_FILTERS = ("status", "template", "project", "tag", "text")


@portal.get("/")
@login_required
def home():
    return redirect(url_for("portal.jobs"))


@portal.get("/jobs", endpoint="jobs")
@login_required
def jobs_page():
    """The Jobs table. Its filters, whose jobs it shows and its page are all in the URL,
    so a reload, Back or a shared link shows the same table."""
    args = request.args
    page = parse_id(args.get("page", "1")) or 1
    page = min(page, jobs.MAX_PAGE)
    filters = {k: args.get(k, "").strip() or None for k in JOB_FILTERS}
    # A person's own jobs first; every job they may see (on data they share) on request.
    scope = "all" if args.get("scope") == "all" else "mine"
    rows, total = jobs.list_jobs(ctx(), me(), page=page, per_page=PER_PAGE, mine=scope == "mine",
                                 **filters)
    tags = {j.id: jobs.tag_names(j) for j in rows}
    templates = access.where_may(me(), "template.view",
                                 Template.select(Template.id, Template.name).order_by(Template.name))
    # The page's links keep the filters chosen and the scope (the default left out).
    chosen = {k: v for k, v in filters.items() if v}
    scope_args = {"scope": "all"} if scope == "all" else {}
    return render_template("jobs.html", rows=rows, total=total, page=page, per_page=PER_PAGE, tags=tags,
                           filters=filters, chosen=chosen, scope=scope, scope_args=scope_args,
                           kept=chosen | scope_args, statuses=STATUSES, templates=list(templates),
                           shown_reason=job_reasons.shown_reason)


@portal.get("/jobs/statuses")
@login_required
def job_statuses():
    """Status of some jobs, for the table's live refresh (only jobs the person may see)."""
    ids = [i for i in map(parse_id, request.args.get("ids", "").split(",")) if i is not None][:200]
    query = access.visible_jobs(me(), Job.select(Job.id, Job.status, Job.reason, Job.cpu_seconds,
                                                 Job.gpu_seconds, Job.finalized, Job.ended_at,
                                                 Job.slurm_job_id, Job.cancelled_by)
                                .where(Job.id.in_(ids)))
    shown_time = current_app.jinja_env.filters["dt"]  # as the table shows it
    return jsonify({str(j.id): {"status": j.status, "reason": job_reasons.shown_reason(j),
                                "finalized": j.finalized,
                                "cpu_hours": format_seconds_as_hours(j.cpu_seconds),
                                "gpu_hours": format_seconds_as_hours(j.gpu_seconds),
                                "ended": shown_time(j.ended_at)}
                    for j in query})


# --- Job details ---------------------------------------------------------------

def _start_words(j: Job) -> str:
    """When a pending job should start, as Slurm estimates it ("" once it has started)."""
    if j.status != PENDING or not j.slurm_job_id:
        return ""
    at = job_reasons.expected_start(j)
    if at is None:
        if "held" in j.reason.lower():
            return "It has no expected start while it is held."
        return "Slurm has not estimated when it will start yet."
    dt = current_app.jinja_env.filters["dt"]
    if at <= utcnow():
        return f"Slurm expected it to start by {dt(at)}: any moment now."
    return f"Slurm expects it to start around {dt(at)}."


def _live(j: Job) -> dict:
    """What the details page shows that changes while the job runs, formatted as the
    page formats it: the page renders it, and its script refreshes it from job_live."""
    dt = current_app.jinja_env.filters["dt"]
    return {
        "status": j.status, "finalized": j.finalized, "reason": job_reasons.shown_reason(j),
        "expected_start": _start_words(j),
        "started": dt(j.started_at), "ended": dt(j.ended_at),
        "cpu_hours": format_seconds_as_hours(j.cpu_seconds),
        "gpu_hours": format_seconds_as_hours(j.gpu_seconds),
        "slurm": " ".join(filter(None, [j.slurm_job_id or "—", j.slurm_state])),
        "exit_code": j.exit_code,
    }


@portal.get("/jobs/<int:job_id>")
@login_required
def job(job_id):
    j = jobs.get_job(ctx(), me(), job_id)
    user = me()
    # Viewers of the data see the job read-only: no comments, nothing to change.
    can_comment = access.can(user, "job.comment", j)
    comments = job_notes.list_comments(ctx(), user, j) if can_comment else []
    can_share = access.can(user, "job.share", j)
    return render_template(
        "job.html", j=j, d=jobs.job_dict(j), live=_live(j),
        comments=comments, can_comment=can_comment,
        edited={c.id for c in comments if job_notes.was_edited(c)},
        editable_comments={c.id for c in comments if access.can(user, "comment.edit", c)},
        can_tag=access.can(user, "job.tag", j),
        can_cancel=access.can(user, "job.cancel", j) and not j.finalized and bool(j.slurm_job_id),
        confirm_cancel=request.args.get("confirm") == "cancel",
        can_share=can_share,
        links=share_links.list_links(user, j) if can_share else [],
        new_link=request.args.get("new_link"),
        can_run_again=bool(j.template_id) and access.can(user, "template.run", j.template),
    )


@portal.get("/jobs/<int:job_id>/live")
@login_required
def job_live(job_id):
    """The changing facts of one job (status, reason, expected start, times, usage) for
    the details page's live refresh; only to whoever may see the job."""
    return jsonify(_live(jobs.get_job(ctx(), me(), job_id)))


@portal.post("/jobs/<int:job_id>/act")
@login_required
def job_action(job_id):
    """Every change on the details page: cancel, tags, comments, share links."""
    j = jobs.get_job(ctx(), me(), job_id)
    form, user = request.form, me()
    action = form.get("action", "")
    extra = {}
    try:
        if action == "cancel" and form.get("confirmed") != "yes":
            # Not confirmed (the page's script asks in a dialog first): ask on the page.
            return redirect(url_for("portal.job", job_id=j.id, confirm="cancel") + "#cancel-dialog")
        if action == "cancel":
            jobs.cancel(ctx(), user, j)
            flash("Cancel requested: the job stops as soon as Slurm has ended it.")
        elif action == "add_tag":
            job_notes.add_tag(ctx(), user, j, form.get("name"))
        elif action == "delete_tag":
            job_notes.delete_tag(ctx(), user, j, form.get("name", ""))
        elif action == "rename_tag":
            job_notes.rename_tag(ctx(), user, j, form.get("old", ""), form.get("name"))
        elif action == "add_comment":
            job_notes.add_comment(ctx(), user, j, {"body": form.get("body", "")})
        elif action == "edit_comment":
            job_notes.edit_comment(ctx(), user, j, form.get("comment"), {"body": form.get("body", "")})
        elif action == "delete_comment":
            job_notes.delete_comment(ctx(), user, j, form.get("comment"))
        elif action == "share":
            hours_ = form.get("expires_in_hours") or None
            _, token = share_links.create(user, j, {"expires_in_hours": hours_} if hours_ else {})
            extra["new_link"] = token
        elif action == "revoke_link":
            share_links.revoke(user, j, form.get("link"))
            flash("Share link revoked.")
    except GatewayError as e:
        flash(f"Not done: {e.message}")
    anchor = {"add_tag": "#tags", "delete_tag": "#tags", "rename_tag": "#tags", "share": "#share",
              "revoke_link": "#share"}.get(action, "#comments" if "comment" in action else "")
    return redirect(url_for("portal.job", job_id=j.id, **extra) + anchor)


@portal.post("/jobs/<int:job_id>/rerun-with-more")
@login_required
def job_rerun_with_more(job_id):
    """Run a job that ran out of memory or time again, with more of it."""
    j = jobs.get_job(ctx(), me(), job_id)
    try:
        new = efficiency.run_again_with_more(ctx(), me(), j)
    except GatewayError as e:
        flash(f"Not run again: {e.message}")
        return redirect(url_for("portal.job", job_id=j.id) + "#efficiency")
    flash(f"Job {new.id} submitted (Slurm job {new.slurm_job_id}), with more than job {j.id} had.")
    return redirect(url_for("portal.job", job_id=new.id))


@portal.get("/s/<token>")
def shared(token):
    """The public, view-only page of a share link: no account needed."""
    try:
        j = share_links.job_for_token(token)
    except GatewayError as e:
        return render_template("error.html", code=e.status, title="Link not available",
                               message=e.message), e.status
    return render_template("shared_job.html", d=share_links.public_job_dict(j), token=token,
                           log=jobs.read_log(ctx(), j, 0)[0].decode("utf-8", "replace"))
