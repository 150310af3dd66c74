"""Tags and comments on jobs, with the product's rules for who may write them.

Tags: before a job starts only the person who ran it may tag it; once it has started,
Members and up of its data may add, rename and delete tags. Anyone who may see the job
sees its tags. Comments: Members and up read and add them; each person edits or
deletes only their own, whatever their role.
"""
from __future__ import annotations

import re
from datetime import timedelta

from peewee import IntegrityError

from . import access
from .context import Context
from .db import database, iso, utcnow
from .errors import Conflict, NotFound, ValidationError
from .models import Comment, Job, Tag, User
from .validation import by_id

TAG_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
MAX_COMMENT = 10_000


def check_tag_name(name, field: str = "name") -> str:
    if not isinstance(name, str) or not TAG_RE.match(name.strip() or "\x00"):
        raise ValidationError("a tag is 1-64 printable characters", field)
    return name.strip()


def require_tagging(user: User, job: Job) -> None:
    # Who may tag depends on whether the job has started: access's table says both.
    access.require(user, "job.tag", job, "job", "job")


def list_tags(ctx: Context, job: Job) -> list[str]:
    return [t.name for t in job.tags.order_by(Tag.name)]


def add_tag(ctx: Context, user: User, job: Job, name: str) -> list[str]:
    require_tagging(user, job)
    name = check_tag_name(name)
    try:
        with database.atomic():
            Tag.create(job=job, name=name, created_by=user)
    except IntegrityError:
        raise Conflict(f"job {job.id} already has the tag {name!r}", "name") from None
    return list_tags(ctx, job)


def rename_tag(ctx: Context, user: User, job: Job, old: str, new: str) -> list[str]:
    require_tagging(user, job)
    new = check_tag_name(new)
    tag = Tag.get_or_none(Tag.job == job, Tag.name == old)
    if tag is None:
        raise NotFound(f"job {job.id} has no tag {old!r}", "tag")
    try:
        with database.atomic():
            Tag.update(name=new).where(Tag.id == tag.id).execute()
    except IntegrityError:
        raise Conflict(f"job {job.id} already has the tag {new!r}", "name") from None
    return list_tags(ctx, job)


def delete_tag(ctx: Context, user: User, job: Job, name: str) -> list[str]:
    require_tagging(user, job)
    if not Tag.delete().where(Tag.job == job, Tag.name == name).execute():
        raise NotFound(f"job {job.id} has no tag {name!r}", "tag")
    return list_tags(ctx, job)


def _comment_body(body) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"].strip():
        raise ValidationError("a comment needs a non-empty 'body'", "body")
    if len(body["body"]) > MAX_COMMENT:
        raise ValidationError(f"is longer than {MAX_COMMENT} characters", "body")
    return body["body"]


def list_comments(ctx: Context, user: User, job: Job) -> list[Comment]:
    access.require(user, "job.comment", job, "job")
    comments = list(Comment.select(Comment, User).join(User, on=(Comment.author == User.id))
                    .where(Comment.job == job).order_by(Comment.id))
    for c in comments:
        c.job = job  # known: who may change each is asked without a query per comment
    return comments


def add_comment(ctx: Context, user: User, job: Job, body: dict) -> Comment:
    access.require(user, "job.comment", job, "job")
    now = utcnow()  # one instant: a new comment is not an edited one
    return Comment.create(job=job, author=user, body=_comment_body(body), created_at=now, updated_at=now)


def _own_comment(user: User, job: Job, comment_id) -> Comment:
    access.require(user, "job.comment", job, "job")
    comment = by_id(Comment, comment_id, Comment.job == job)
    if comment is None:
        raise NotFound(f"job {job.id} has no comment {comment_id}", "comment")
    comment.job = job
    access.require(user, "comment.edit", comment, "comment", "comment")
    return comment


def edit_comment(ctx: Context, user: User, job: Job, comment_id: int | str, body: dict) -> Comment:
    comment = _own_comment(user, job, comment_id)
    comment.body = _comment_body(body)
    comment.updated_at = utcnow()
    comment.save()
    return comment


def delete_comment(ctx: Context, user: User, job: Job, comment_id: int | str) -> None:
    _own_comment(user, job, comment_id).delete_instance()


# Comments written before both times were set at once differ by a few microseconds.
EDIT_TOLERANCE = timedelta(milliseconds=50)


def was_edited(c: Comment) -> bool:
    return c.updated_at - c.created_at > EDIT_TOLERANCE


def comment_dict(c: Comment) -> dict:
    return {"id": c.id, "author": c.author.username, "body": c.body,
            "created_at": iso(c.created_at), "updated_at": iso(c.updated_at), "edited": was_edited(c)}
