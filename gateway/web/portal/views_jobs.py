"""The Jobs table, Job details with its tabs, and the public share page."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for

from ... import access, job_notes, jobs, share_links
from ...errors import GatewayError
from ...hours import format_hours, hours
from ...models import Job, Template
from ...slurm.states import STATUSES
from ...validation import parse_id
from . import portal
from .common import ctx, login_required, me

PER_PAGE = 50


@portal.get("/")
@login_required
def home():
    return redirect(url_for("portal.jobs"))


@portal.get("/jobs", endpoint="jobs")
@login_required
def jobs_page():
    args = request.args
    page = parse_id(args.get("page", "1")) or 1
    page = min(page, jobs.MAX_PAGE)
    filters = {k: args.get(k) or None for k in ("status", "template", "project", "tag")}
    rows, total = jobs.list_jobs(ctx(), me(), page=page, per_page=PER_PAGE, **filters)
    tags = {j.id: jobs.tag_names(j) for j in rows}
    templates = access.where_may(me(), "template.view",
                                 Template.select(Template.id, Template.name).order_by(Template.name))
    return render_template("jobs.html", rows=rows, total=total, page=page, per_page=PER_PAGE, tags=tags,
                           filters=filters, statuses=STATUSES,
                           templates=list(templates))


@portal.get("/jobs/statuses")
@login_required
def job_statuses():
    """Status of some jobs, for the table's live refresh (only jobs the person may see)."""
    ids = [i for i in map(parse_id, request.args.get("ids", "").split(",")) if i is not None][:200]
    query = access.visible_jobs(me(), Job.select(Job.id, Job.status, Job.reason, Job.cpu_seconds,
                                                 Job.gpu_seconds, Job.finalized).where(Job.id.in_(ids)))
    return jsonify({str(j.id): {"status": j.status, "reason": j.reason, "finalized": j.finalized,
                                "cpu_hours": format_hours(hours(j.cpu_seconds)),
                                "gpu_hours": format_hours(hours(j.gpu_seconds))}
                    for j in query})


@portal.get("/jobs/<int:job_id>")
@login_required
def job(job_id):
    j = jobs.get_job(ctx(), me(), job_id)
    user = me()
    can_comment = access.can(user, "job.comment", j)
    comments = job_notes.list_comments(ctx(), user, j) if can_comment else []
    return render_template(
        "job.html", j=j, d=jobs.job_dict(j),
        comments=comments, can_comment=can_comment,
        editable_comments={c.id for c in comments if access.can(user, "comment.edit", c)},
        can_tag=access.can(user, "job.tag", j),
        can_cancel=access.can(user, "job.cancel", j) and not j.finalized and bool(j.slurm_job_id),
        can_share=access.can(user, "job.share", j),
        links=share_links.list_links(user, j) if access.can(user, "job.share", j) else [],
        new_link=request.args.get("new_link"),
        can_run_again=bool(j.template_id) and access.can(user, "template.run", j.template),
    )





@portal.post("/jobs/<int:job_id>/act")
@login_required
def job_action(job_id):
    """Every change on the details page: cancel, tags, comments, share links."""
    j = jobs.get_job(ctx(), me(), job_id)
    form, user = request.form, me()
    action = form.get("action", "")
    extra = {}
    try:
        if action == "cancel":
            jobs.cancel(ctx(), user, j)
            flash("Cancel requested.")
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
