"""Who may do what: the one table of action -> least role, used by API, CLI and portal.

Roles rank Owner > Manager > Member > Viewer. For now a person holds the Owner role on
what they created and admins hold every role; grants to people and teams plug into
``role_of`` without touching any caller.
"""
from __future__ import annotations

from enum import IntEnum

from .errors import Forbidden, NotFound


class Role(IntEnum):
    VIEWER = 1
    MEMBER = 2
    MANAGER = 3
    OWNER = 4


# action -> least role that may do it
ACTIONS: dict[str, Role] = {
    "environment.view": Role.VIEWER,
    "environment.use": Role.MEMBER,
    "environment.edit": Role.MANAGER,
    "template.view": Role.VIEWER,
    "template.run": Role.MEMBER,
    "template.edit": Role.MANAGER,
    "project.view": Role.VIEWER,
    "project.edit": Role.MANAGER,
    "experiment.view": Role.VIEWER,
    "experiment.read_data": Role.MEMBER,
    "experiment.write_data": Role.MEMBER,
    "experiment.run_on": Role.MEMBER,
    "experiment.edit": Role.MANAGER,
    "job.view": Role.MEMBER,
    "job.cancel": Role.MANAGER,
    "license.charge": Role.MEMBER,
    "license.view_usage": Role.MEMBER,
}


def role_of(user, obj) -> Role | None:
    """The strongest role ``user`` holds on ``obj`` (a model instance), or None."""
    if user is None:
        return None
    if getattr(user, "is_admin", False):
        return Role.OWNER
    kind = type(obj).__name__
    if kind == "Job":
        # The person who ran a job owns it; on shared data, project roles count too.
        if obj.user_id == user.id:
            return Role.OWNER
        roles = [role_of(user, o) for o in (obj.experiment, obj.project) if o is not None]
        return max((r for r in roles if r is not None), default=None)
    if kind == "Experiment":
        if obj.owner_id == user.id:
            return Role.OWNER
        return role_of(user, obj.project)
    if kind in ("Environment", "Template", "Project"):
        if obj.owner_id == user.id:
            return Role.OWNER
        if getattr(obj, "public", False):
            # Public things are usable by every signed-in person.
            return Role.MEMBER
        return None
    if kind == "License":
        # Licences are site configuration for now: every signed-in person may charge one.
        return Role.MEMBER
    return None


def can(user, action: str, obj) -> bool:
    least = ACTIONS[action]
    role = role_of(user, obj)
    return role is not None and role >= least


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


def visible_jobs(user, query):
    """Restrict a Job query to what ``user`` may see: their own jobs and jobs on
    projects or experiments they own (grants to people and teams extend this)."""
    from .models import Experiment, Job, Project

    if user.is_admin:
        return query
    own_projects = Project.select(Project.id).where(Project.owner == user)
    own_experiments = Experiment.select(Experiment.id).where(Experiment.owner == user)
    return query.where((Job.user == user) | Job.project.in_(own_projects)
                       | Job.experiment.in_(own_experiments))
