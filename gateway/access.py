"""Who may do what: the one table of action -> least role, used by API, CLI and portal.

Roles rank Owner > Manager > Member > Viewer. A person holds a role on an object by
creating it (Owner), through a grant to them or to one of their teams, through the
project an experiment belongs to, or because the object is public (Member: visible
and usable by every signed-in person). Admins hold every role. Licences come from the
site config, whose ``sponsor`` (Owner) and ``members`` (Member) count like grants.
"""
from __future__ import annotations

from enum import IntEnum

from .errors import Conflict, Forbidden, NotFound


class Role(IntEnum):
    VIEWER = 1
    MEMBER = 2
    MANAGER = 3
    OWNER = 4


ROLE_NAMES = {r.name.lower(): r for r in Role}

# action -> least role that may do it
ACTIONS: dict[str, Role] = {
    "environment.view": Role.VIEWER,
    "environment.use": Role.MEMBER,
    "environment.edit": Role.MANAGER,
    "environment.manage_access": Role.MANAGER,
    "template.view": Role.VIEWER,
    # Lowered to VIEWER for open-source templates (see least_role).
    "template.view_config": Role.MEMBER,
    "template.run": Role.MEMBER,
    "template.edit": Role.MANAGER,
    "template.manage_access": Role.MANAGER,
    "project.view": Role.VIEWER,
    "project.edit": Role.MANAGER,
    "project.manage_access": Role.MANAGER,
    "experiment.view": Role.VIEWER,
    "experiment.read_data": Role.MEMBER,
    "experiment.write_data": Role.MEMBER,
    "experiment.run_on": Role.MEMBER,
    "experiment.edit": Role.MANAGER,
    "experiment.manage_access": Role.MANAGER,
    # Every Member, Manager and Owner of the data sees all jobs run on it (F22).
    "job.view": Role.MEMBER,
    # A plain sbatch script is the submitter's own (a template job's rendered script is
    # shown to whoever may see the template's configuration instead).
    "job.view_script": Role.OWNER,
    "job.cancel": Role.MANAGER,
    "job.tag": Role.MEMBER,
    "job.comment": Role.MEMBER,
    "job.share": Role.MEMBER,
    "job.manage_shares": Role.MANAGER,
    "license.view": Role.MEMBER,
    "license.charge": Role.MEMBER,
    "license.view_all_usage": Role.MANAGER,
    "license.manage_access": Role.MANAGER,
}
KIND_OF = {"Template": "template", "Project": "project", "Experiment": "experiment",
           "Environment": "environment", "License": "license", "Job": "job"}


def least_role(action: str, obj) -> Role:
    if action == "template.view_config" and getattr(obj, "open_source", False):
        return Role.VIEWER
    return ACTIONS[action]


def object_key(obj) -> str:
    return obj.name if KIND_OF.get(type(obj).__name__) == "license" else str(obj.id)


def team_ids(user) -> list[int]:
    cached = getattr(user, "_team_ids", None)
    if cached is None:
        from .models import TeamMember

        cached = [t.team_id for t in TeamMember.select(TeamMember.team).where(TeamMember.user == user)]
        user._team_ids = cached
    return cached


def granted_roles(user, kind: str) -> dict[str, Role]:
    """object key -> strongest role granted to ``user`` or their teams, for one kind.

    One query per kind, cached on the user object for the request; the grant
    functions clear it when they change grants.
    """
    cache = user.__dict__.setdefault("_grant_cache", {})
    if kind not in cache:
        from .models import Grant

        cond = Grant.user == user
        if team_ids(user):
            cond = cond | Grant.team.in_(team_ids(user))
        roles: dict[str, Role] = {}
        for key, role in Grant.select(Grant.object_key, Grant.role).where(
                (Grant.kind == kind) & cond).tuples():
            r = ROLE_NAMES[role]
            if roles.get(key, 0) < r:
                roles[key] = r
        cache[kind] = roles
    return cache[kind]


def forget_grants(user) -> None:
    user.__dict__.pop("_grant_cache", None)
    user.__dict__.pop("_team_ids", None)


def _best(*roles: Role | None) -> Role | None:
    return max((r for r in roles if r is not None), default=None)


def _license_role(user, lic) -> Role | None:
    teams = None
    role = granted_roles(user, "license").get(lic.name)
    if getattr(lic, "sponsor", "") == user.username:
        return Role.OWNER
    for member in getattr(lic, "members", ()):
        if member.startswith("team:"):
            if teams is None:
                from .models import Team

                teams = {t.name for t in Team.select(Team.name).where(Team.id.in_(team_ids(user)))}
            if member[5:] in teams:
                role = _best(role, Role.MEMBER)
        elif member == user.username:
            role = _best(role, Role.MEMBER)
    return role


def role_of(user, obj) -> Role | None:
    """The strongest role ``user`` holds on ``obj``, or None."""
    if user is None:
        return None
    if getattr(user, "is_admin", False):
        return Role.OWNER
    kind = KIND_OF.get(type(obj).__name__)
    if kind == "job":
        if obj.user_id == user.id:
            return Role.OWNER  # the person who ran it
        return _best(*(role_of(user, o) for o in (obj.experiment, obj.project) if o is not None))
    if kind == "license":
        return _license_role(user, obj)
    if kind is None:
        return None
    if obj.owner_id == user.id:
        return Role.OWNER
    role = granted_roles(user, kind).get(str(obj.id))
    if kind == "experiment":
        role = _best(role, role_of(user, obj.project))
    if getattr(obj, "public", False):
        role = _best(role, Role.MEMBER)
    return role


def can(user, action: str, obj) -> bool:
    role = role_of(user, obj)
    return role is not None and role >= least_role(action, obj)


def require(user, action: str, obj, what: str = "") -> None:
    """Raise unless ``user`` may do ``action`` on ``obj``.

    Someone who cannot even see the object gets 404, so names of private things do
    not leak; someone who can see it but not do this gets 403.
    """
    if can(user, action, obj):
        return
    kind = action.split(".")[0]
    view = f"{kind}.view"
    if view not in ACTIONS or not can(user, view, obj):
        raise NotFound(f"{what or kind} not found")
    raise Forbidden(f"you may not {action.split('.')[1].replace('_', ' ')} this {what or kind}")


def name_taken(user, existing, kind: str, name: str) -> Conflict:
    """The error for a name already in use. Names are unique site-wide, so the name
    cannot be given twice; but only someone who may see the holder learns it exists."""
    if can(user, f"{kind}.view", existing):
        return Conflict(f"{kind} {name!r} already exists", "name")
    return Conflict(f"the name {name!r} is not available: choose another", "name")


def keys_with_role(user, kind: str, least: Role) -> list[str]:
    return [k for k, r in granted_roles(user, kind).items() if r >= least]


def visible_jobs(user, query):
    """Restrict a Job query to what ``user`` may see: jobs they ran, and every job on a
    project or experiment where they are Member or more (F22)."""
    from .models import Experiment, Job, Project

    if user.is_admin:
        return query
    projects = [int(k) for k in keys_with_role(user, "project", Role.MEMBER)]
    experiments = [int(k) for k in keys_with_role(user, "experiment", Role.MEMBER)]
    own_projects = Project.select(Project.id).where(Project.owner == user)
    own_experiments = Experiment.select(Experiment.id).where(Experiment.owner == user)
    cond = (Job.user == user) | Job.project.in_(own_projects) | Job.experiment.in_(own_experiments)
    if projects:
        cond = cond | Job.project.in_(projects)
    if experiments:
        cond = cond | Job.experiment.in_(experiments)
    return query.where(cond)
