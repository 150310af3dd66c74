"""API for working together on jobs: tags, comments, share links, and the public view."""
from __future__ import annotations

from flask import Blueprint, jsonify

from .. import job_notes, jobs, share_links
from .common import authenticated, body, created, ctx, log_response, optional_body, output_file_response, user

sharing = Blueprint("api_sharing", __name__, url_prefix="/api/v1")


def _job(job_id):
    return jobs.get_job(ctx(), user(), job_id)


@sharing.get("/jobs/<job_id>/tags")
@authenticated
def list_tags(job_id):
    return jsonify(job_notes.list_tags(ctx(), _job(job_id)))


@sharing.post("/jobs/<job_id>/tags")
@authenticated
def add_tag(job_id):
    return created({"tags": job_notes.add_tag(ctx(), user(), _job(job_id), body().get("name"))})


@sharing.put("/jobs/<job_id>/tags/<name>")
@authenticated
def rename_tag(job_id, name):
    return jsonify({"tags": job_notes.rename_tag(ctx(), user(), _job(job_id), name, body().get("name"))})


@sharing.delete("/jobs/<job_id>/tags/<name>")
@authenticated
def delete_tag(job_id, name):
    return jsonify({"tags": job_notes.delete_tag(ctx(), user(), _job(job_id), name)})


@sharing.get("/jobs/<job_id>/comments")
@authenticated
def list_comments(job_id):
    return jsonify([job_notes.comment_dict(c) for c in job_notes.list_comments(ctx(), user(), _job(job_id))])


@sharing.post("/jobs/<job_id>/comments")
@authenticated
def add_comment(job_id):
    return created(job_notes.comment_dict(job_notes.add_comment(ctx(), user(), _job(job_id), body())))


@sharing.put("/jobs/<job_id>/comments/<comment_id>")
@authenticated
def edit_comment(job_id, comment_id):
    c = job_notes.edit_comment(ctx(), user(), _job(job_id), comment_id, body())
    return jsonify(job_notes.comment_dict(c))


@sharing.delete("/jobs/<job_id>/comments/<comment_id>")
@authenticated
def delete_comment(job_id, comment_id):
    job_notes.delete_comment(ctx(), user(), _job(job_id), comment_id)
    return jsonify({"ok": True})


@sharing.get("/jobs/<job_id>/share-links")
@authenticated
def list_share_links(job_id):
    return jsonify([share_links.link_dict(x) for x in share_links.list_links(user(), _job(job_id))])


@sharing.post("/jobs/<job_id>/share-links")
@authenticated
def create_share_link(job_id):
    link, token = share_links.create(user(), _job(job_id), optional_body())
    return created(share_links.link_dict(link, token, ctx().config.public_url))


@sharing.delete("/jobs/<job_id>/share-links/<link_id>")
@authenticated
def revoke_share_link(job_id, link_id):
    share_links.revoke(user(), _job(job_id), link_id)
    return jsonify({"ok": True})


# --- the public, view-only side: no account needed, nothing but this job's results ---

@sharing.get("/shared/<token>")
def shared_job(token):
    return jsonify(share_links.public_job_dict(share_links.job_for_token(token)))


@sharing.get("/shared/<token>/log")
def shared_log(token):
    return log_response(share_links.job_for_token(token))


@sharing.get("/shared/<token>/files/<path:relative>")
def shared_file(token, relative):
    job = share_links.job_for_token(token)
    return output_file_response(job, relative)
