"""Job Templates: create, edit (each edit is a new version), support files, listing."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import fn

from . import access, environments
from .context import Context
from .db import database, iso, utcnow
from .errors import NotFound, PayloadTooLarge, ValidationError
from .inputs import check_inputs, check_outputs
from .models import Environment, EnvironmentVersion, Job, Template, TemplateVersion, User
from .validation import check_name, get_str, parse_id, require_dict

LANGUAGES = ("bash", "python")
INTERPRETER_RE = re.compile(r"^[A-Za-z0-9_./+-]+$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
MAX_SCRIPT = 1_000_000


def _version_fields(ctx: Context, user: User, body: dict) -> dict[str, Any]:
    """Validate the parts of a body that make a version; return model fields."""
    language = body.get("language")
    if language not in LANGUAGES:
        raise ValidationError(f"must be one of {list(LANGUAGES)}", "language")
    script = get_str(body, "script", required=True, max_len=MAX_SCRIPT)
    if "\0" in script:
        raise ValidationError("must not contain NUL bytes", "script")
    ev = environments.resolve_version(ctx, user, body.get("environment"), body.get("environment_version"))
    python = get_str(body, "python_executable", max_len=255).strip()
    if language == "python":
        python = python or "python3"
        if not INTERPRETER_RE.match(python):
            raise ValidationError("must be a command name or an absolute path without spaces",
                                  "python_executable")
    elif python:
        raise ValidationError("only a python template names an interpreter", "python_executable")
    return {
        "language": language, "script": script, "environment_version": ev,
        "python_executable": python,
        "inputs": check_inputs(body.get("inputs")),
        "outputs": check_outputs(body.get("outputs")),
    }


def _stored_files(ctx: Context, uploads: list[tuple[str, bytes]],
                  files: dict[str, dict] | None = None) -> list[dict]:
    """``files`` with ``uploads`` added (each put in the blob store) or replacing those
    of the same name."""
    max_bytes = ctx.max_upload_bytes
    files = dict(files or {})
    for name, data in uploads:
        if not FILE_NAME_RE.match(name or ""):
            raise ValidationError(f"{name!r} is not a valid file name (letters, digits, . _ -)", "files")
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"{name} is larger than {max_bytes // 2**20} MB", "files")
        files[name] = {"name": name, "sha256": ctx.blobs.put(data), "size": len(data)}
    return sorted(files.values(), key=lambda f: f["name"])


def create_template(ctx: Context, user: User, body: dict,
                    uploads: list[tuple[str, bytes]] = ()) -> Template:
    """A new template (version 1), with support files if ``uploads`` are given."""
    require_dict(body)
    name = check_name(body.get("name"), "name")
    description = get_str(body, "description")
    fields = _version_fields(ctx, user, body)
    files = _stored_files(ctx, list(uploads))
    with database.atomic():
        existing = Template.get_or_none(Template.name == name)
        if existing is not None:
            raise access.name_taken(user, existing, "template", name)
        tpl = Template.create(name=name, description=description, owner=user)
        TemplateVersion.create(template=tpl, version=1, created_by=user, files=files, **fields)
        if "public" in body or "open_source" in body:
            update_settings(ctx, user, tpl, {k: body[k] for k in ("public", "open_source") if k in body})
    return tpl


def get_template(ctx: Context, user: User, template_id: int | str) -> Template:
    tpl = Template.get_or_none(Template.id == _int_id(template_id))
    if tpl is None or not access.can(user, "template.view", tpl):
        raise NotFound(f"template {template_id} not found", "template")
    return tpl


def find_template(ctx: Context, user: User, ref: str) -> Template:
    """A template by id or by name (the CLI accepts either)."""
    if parse_id(ref) is not None:
        return get_template(ctx, user, ref)
    tpl = Template.get_or_none(Template.name == ref)
    if tpl is None or not access.can(user, "template.view", tpl):
        raise NotFound(f"template {ref!r} not found", "template")
    return tpl


def _int_id(value) -> int:
    key = parse_id(value)
    if key is None:
        raise NotFound(f"{value!r} is not an id", "template")
    return key


def get_version(tpl: Template, version: int | str | None = None) -> TemplateVersion:
    number = parse_id(tpl.latest_version if version in (None, "") else version)
    if number is None:
        raise ValidationError("must be a version number", "version")
    # One query for the version with its environment: a run needs all three.
    tv = (TemplateVersion.select(TemplateVersion, EnvironmentVersion, Environment)
          .join(EnvironmentVersion).join(Environment)
          .where(TemplateVersion.template == tpl, TemplateVersion.version == number).first())
    if tv is None:
        raise ValidationError(f"template {tpl.name!r} has no version {number}", "version")
    return tv


def list_templates(ctx: Context, user: User) -> list[Template]:
    """The templates ``user`` may see, by name (filtered in SQL), each with what
    template_dict shows loaded up front: owner, latest version with its environment and
    author, version list, last run. A fixed number of queries however many there are."""
    author = User.alias()
    latest = ((TemplateVersion.template == Template.id)
              & (TemplateVersion.version == Template.latest_version))
    query = (Template.select(Template, User, TemplateVersion, EnvironmentVersion, Environment, author)
             .join(User, on=(Template.owner == User.id))
             .switch(Template).join(TemplateVersion, on=latest, attr="latest")
             .join(EnvironmentVersion).join(Environment)
             .switch(TemplateVersion).join(author, on=(TemplateVersion.created_by == author.id),
                                           attr="created_by")
             .order_by(Template.name))
    rows = list(access.where_may(user, "template.view", query))
    history = _load_history(rows)
    for t in rows:
        t.history = history[t.id]
    return rows


@dataclass
class History:
    """A template's versions (number, when) and when it last ran."""
    versions: list[tuple[int, datetime]] = field(default_factory=list)
    last_run_at: datetime | None = None


def _load_history(templates: list[Template]) -> dict[int, History]:
    """template id -> History, for all of ``templates`` in two queries."""
    found = {t.id: History() for t in templates}
    if not found:
        return found
    for template_id, number, created_at in (
            TemplateVersion.select(TemplateVersion.template, TemplateVersion.version,
                                   TemplateVersion.created_at)
            .where(TemplateVersion.template.in_(list(found))).order_by(TemplateVersion.version).tuples()):
        found[template_id].versions.append((number, created_at))
    for template_id, last_run_at in (Job.select(Job.template, fn.MAX(Job.submitted_at))
                                     .where(Job.template.in_(list(found)))
                                     .group_by(Job.template).tuples()):
        found[template_id].last_run_at = last_run_at
    return found


def _new_version(user: User, tpl: Template, fields: dict, files: list[dict],
                 description: str | None = None) -> TemplateVersion:
    with database.atomic():
        # Re-read under the transaction so two concurrent edits cannot take one number.
        latest = Template.get_by_id(tpl.id).latest_version
        tv = TemplateVersion.create(template=tpl, version=latest + 1, created_by=user,
                                    files=files, **fields)
        # Only these columns: a whole-row save would write back this object's (maybe
        # stale) version number, and the description changes with its version or not at all.
        changes = {Template.latest_version: latest + 1, Template.updated_at: utcnow()}
        if description is not None:
            changes[Template.description] = description
            tpl.description = description
        Template.update(changes).where(Template.id == tpl.id).execute()
    tpl.latest_version = latest + 1
    return tv


def update_template(ctx: Context, user: User, tpl: Template, body: dict,
                    uploads: list[tuple[str, bytes]] = ()) -> TemplateVersion:
    """Save an edit as a new version; earlier versions stay runnable."""
    require_dict(body)
    access.require(user, "template.edit", tpl, "template")
    if "name" in body and body["name"] != tpl.name:
        raise ValidationError("a template's name cannot change", "name")
    fields = _version_fields(ctx, user, body)
    env = fields["environment_version"].environment
    if tpl.public and not env.public:
        # A public template runs only in a public environment: checked on every path
        # that changes the environment, not only when the template is made public.
        raise ValidationError(f"the template is public, so its environment must be public too; "
                              f"{env.name!r} is not", "environment")
    current = {f["name"]: f for f in get_version(tpl).files}
    for name in body.get("remove_files") or []:
        current.pop(name, None)
    files = _stored_files(ctx, list(uploads), current)
    description = get_str(body, "description") if "description" in body else None
    return _new_version(user, tpl, fields, files, description)


def add_files(ctx: Context, user: User, tpl: Template, uploads: list[tuple[str, bytes]]) -> TemplateVersion:
    """Add or replace support files; the result is a new version."""
    access.require(user, "template.edit", tpl, "template")
    if not uploads:
        raise ValidationError("no files were uploaded", "files")
    current = get_version(tpl)
    files = _stored_files(ctx, uploads, {f["name"]: f for f in current.files})
    fields = {k: getattr(current, k) for k in
              ("language", "script", "environment_version", "python_executable", "inputs", "outputs")}
    return _new_version(user, tpl, fields, files)


def update_settings(ctx: Context, user: User, tpl: Template, body: dict) -> Template:
    """Public (every signed-in person may see and run it) and open source (Viewers see
    its configuration). A template may be public only if its environment is."""
    require_dict(body)
    access.require(user, "template.edit", tpl, "template")
    public = body.get("public", tpl.public)
    open_source = body.get("open_source", tpl.open_source)
    for key, value in (("public", public), ("open_source", open_source)):
        if not isinstance(value, bool):
            raise ValidationError("must be true or false", key)
    if public:
        env = get_version(tpl).environment_version.environment
        if not env.public:
            raise ValidationError(f"the template's environment {env.name!r} is not public, so the "
                                  f"template cannot be", "public")
    if "description" in body:
        tpl.description = get_str(body, "description")
    tpl.public, tpl.open_source = public, open_source
    tpl.updated_at = utcnow()
    tpl.save()
    return tpl


def mark_validated(template_id: int) -> None:
    Template.update(status="validated").where(
        Template.id == template_id, Template.status != "validated").execute()


def version_dict(tv: TemplateVersion) -> dict:
    ev = tv.environment_version
    return {
        "version": tv.version, "language": tv.language, "script": tv.script,
        "environment": ev.environment.name, "environment_version": ev.version,
        "python_executable": tv.python_executable or None,
        "inputs": tv.inputs, "outputs": tv.outputs, "files": tv.files,
        "created_by": tv.created_by.username, "created_at": iso(tv.created_at),
    }


CONFIG_KEYS = ("script", "inputs", "outputs", "files", "python_executable")


def template_dict(tpl: Template, version: TemplateVersion | None = None, user: User | None = None) -> dict:
    """A template as the API shows it to ``user``: without its configuration (script,
    inputs, outputs, files) for Viewers of a template that is not open source."""
    # list_templates joined the latest version and loaded the history; alone, they are read now.
    tv = version or tpl.__dict__.get("latest") or get_version(tpl)
    history = tpl.__dict__.get("history") or _load_history([tpl])[tpl.id]
    out = {
        "id": tpl.id, "name": tpl.name, "description": tpl.description,
        "owner": tpl.owner.username, "status": tpl.status, "public": tpl.public,
        "open_source": tpl.open_source, "latest_version": tpl.latest_version,
        "versions": [{"version": number, "created_at": iso(at)} for number, at in history.versions],
        "created_at": iso(tpl.created_at), "updated_at": iso(tpl.updated_at),
        "last_run_at": iso(history.last_run_at),
        **version_dict(tv),
    }
    if user is not None and not access.can(user, "template.view_config", tpl):
        for key in CONFIG_KEYS:
            out.pop(key, None)
        out["configuration_hidden"] = True
    return out
