"""Environments: the software a job runs with, as versioned shell set-up lines."""
from __future__ import annotations

import re

from . import access
from .context import Context
from .db import database, iso
from .errors import Conflict, NotFound, ValidationError
from .models import Environment, EnvironmentVersion, Template, TemplateVersion, User
from .validation import check_name, get_bool, get_str, require_dict

VERSION_RULE = "must be 1-64 letters, digits, '.', '_' or '-'"
FIRST_VERSION = "1"
# What update_settings changes; anything else in its body is named back as an error.
SETTINGS = ("public", "description")


def create_environment(ctx: Context, user: User, body: dict) -> Environment:
    """A new environment owned by ``user``. With ``setup`` (and optionally ``version``,
    "1" by default) in the body its first version is made with it, in the same
    transaction: a bad version leaves no environment behind."""
    require_dict(body)
    name = check_name(body.get("name"), "name")
    description = get_str(body, "description")
    public = get_bool(body, "public")
    with database.atomic():
        existing = Environment.get_or_none(Environment.name == name)
        if existing is not None:
            raise access.name_taken(user, existing, "environment", name)
        env = Environment.create(name=name, owner=user, description=description, public=public)
        if "setup" in body or "version" in body:
            add_version(ctx, user, env, {"version": body.get("version") or FIRST_VERSION,
                                         "setup": body.get("setup")})
    return env


def get_environment(ctx: Context, user: User, name: str) -> Environment:
    env = Environment.get_or_none(Environment.name == name)
    if env is None or not access.can(user, "environment.view", env):
        raise NotFound(f"environment {name!r} not found", "environment")
    return env


def list_environments(ctx: Context, user: User) -> list[Environment]:
    """The environments ``user`` may see, by name (filtered in SQL), with their owner
    and versions loaded up front: two queries however many there are."""
    rows = list(access.where_may(user, "environment.view", Environment.select(Environment, User)
                                 .join(User, on=(Environment.owner == User.id)).order_by(Environment.name)))
    versions: dict[int, list[EnvironmentVersion]] = {e.id: [] for e in rows}
    if versions:
        for ev in (EnvironmentVersion.select().where(EnvironmentVersion.environment.in_(list(versions)))
                   .order_by(EnvironmentVersion.id)):
            versions[ev.environment_id].append(ev)
    for e in rows:
        e.version_rows = versions[e.id]
    return rows


def add_version(ctx: Context, user: User, env: Environment, body: dict) -> EnvironmentVersion:
    require_dict(body)
    access.require(user, "environment.edit", env, "environment")
    version = get_str(body, "version", required=True, max_len=64)
    try:
        check_name(version, "version")
    except ValidationError:
        raise ValidationError(VERSION_RULE, "version") from None
    setup = get_str(body, "setup", max_len=100_000)
    if "\0" in setup:
        raise ValidationError("must not contain NUL bytes", "setup")
    with database.atomic():
        if EnvironmentVersion.select().where(EnvironmentVersion.environment == env,
                                             EnvironmentVersion.version == version).exists():
            raise Conflict(f"version {version!r} of {env.name!r} already exists", "version")
        return EnvironmentVersion.create(environment=env, version=version, setup=setup)


def update_settings(ctx: Context, user: User, env: Environment, body: dict) -> Environment:
    """Public (every signed-in person may see and use it) and the description. A public
    template runs only in a public environment, so an environment that the latest
    version of a public template uses stays public until that template is not."""
    require_dict(body)
    access.require(user, "environment.edit", env, "environment")
    for key in body:
        if key not in SETTINGS:
            raise ValidationError(f"cannot be changed here (only {', '.join(SETTINGS)})", str(key))
    public = get_bool(body, "public", default=env.public)
    description = get_str(body, "description", default=env.description)
    with database.atomic():
        if env.public and not public:
            users = public_templates_using(env)
            if users:
                raise ValidationError(
                    f"public templates run in it ({', '.join(users)}): make them private or move "
                    f"them to another public environment first", "public")
        env.public, env.description = public, description
        env.save()
    return env


def public_templates_using(env: Environment) -> list[str]:
    """Names of the public templates whose latest version runs in a version of ``env``."""
    latest = ((TemplateVersion.template == Template.id)
              & (TemplateVersion.version == Template.latest_version))
    query = (Template.select(Template.name)
             .join(TemplateVersion, on=latest)
             .join(EnvironmentVersion, on=(TemplateVersion.environment_version == EnvironmentVersion.id))
             .where(Template.public == True, EnvironmentVersion.environment == env)  # noqa: E712
             .order_by(Template.name))
    return [t.name for t in query]


_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")


def suggest_next_version(labels: list[str]) -> str:
    """A label for the version after ``labels`` (oldest first): the last one with its
    trailing number counted up ("1" -> "2", "2.9" -> "2.10", "v07" -> "v08"), skipping
    labels already taken; "1" for the first; "" when the last ends in no number."""
    if not labels:
        return FIRST_VERSION
    m = _TRAILING_NUMBER.match(labels[-1])
    if m is None:
        return ""
    prefix, digits = m.group(1), m.group(2)
    taken = set(labels)
    for n in range(int(digits) + 1, int(digits) + 1000):
        label = f"{prefix}{n:0{len(digits)}d}"  # "007" -> "008"
        if label not in taken and len(label) <= 64:
            return label
    return ""


def resolve_version(ctx: Context, user: User, env_name, version) -> EnvironmentVersion:
    """The environment version a template names; the newest when ``version`` is empty."""
    if not isinstance(env_name, str) or not env_name:
        raise ValidationError("is required", "environment")
    env = Environment.get_or_none(Environment.name == env_name)
    if env is None or not access.can(user, "environment.use", env):
        raise ValidationError(f"unknown environment {env_name!r}", "environment")
    query = EnvironmentVersion.select().where(EnvironmentVersion.environment == env)
    if version not in (None, ""):
        ev = query.where(EnvironmentVersion.version == str(version)).first()
        if ev is None:
            raise ValidationError(f"environment {env_name!r} has no version {version!r}",
                                  "environment_version")
        return ev
    ev = query.order_by(EnvironmentVersion.id.desc()).first()
    if ev is None:
        raise ValidationError(f"environment {env_name!r} has no versions yet", "environment_version")
    return ev


def version_dict(ev: EnvironmentVersion) -> dict:
    return {"version": ev.version, "setup": ev.setup, "created_at": iso(ev.created_at)}


def environment_dict(env: Environment) -> dict:
    # Loaded by list_environments; for one environment, read now.
    versions = env.__dict__.get("version_rows")
    if versions is None:
        versions = env.versions.order_by(EnvironmentVersion.id)
    return {
        "name": env.name, "description": env.description, "public": env.public,
        "owner": env.owner.username, "created_at": iso(env.created_at),
        "versions": [version_dict(v) for v in versions],
    }
