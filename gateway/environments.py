"""Environments: the software a job runs with, as versioned shell set-up lines."""
from __future__ import annotations

from . import access
from .context import Context
from .db import database, iso
from .errors import Conflict, NotFound, ValidationError
from .models import Environment, EnvironmentVersion, User
from .validation import check_name, get_bool, get_str, require_dict

VERSION_RULE = "must be 1-64 letters, digits, '.', '_' or '-'"


def create_environment(ctx: Context, user: User, body: dict) -> Environment:
    require_dict(body)
    name = check_name(body.get("name"), "name")
    existing = Environment.get_or_none(Environment.name == name)
    if existing is not None:
        raise access.name_taken(user, existing, "environment", name)
    return Environment.create(
        name=name, owner=user,
        description=get_str(body, "description"),
        public=get_bool(body, "public"),
    )


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
