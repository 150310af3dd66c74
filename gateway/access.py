"""Who may do what: the one table of action -> least role, used by API, CLI and portal.

Roles rank Owner > Manager > Member > Viewer. A person holds a role on an object by
creating it (Owner), through a grant to them or to one of their teams, through the
project an experiment belongs to, or because the object is public (Member: visible
and usable by every signed-in person). Admins hold every role. Licences come from the
site config, whose ``sponsor`` (Owner) and ``members`` (Member) count like grants.
A person is a Member of their teams.

A job is owned by the person who ran it; on everyone else's behalf it is worth the
role they hold on its data, up to Manager (so Owner-only job actions stay the
submitter's). A share link is owned by whoever made it, and a comment by its author;
anyone else holds their role on its job (for a comment, up to Manager: no admin
rewrites what someone else wrote).

Every permission question is asked here: ``can``/``require`` for one object, and
``where_may`` for a list, which filters in SQL with the same rules.
"""
from __future__ import annotations

from enum import IntEnum

from .errors import Conflict, Forbidden, NotFound
from .slurm.states import PENDING


class Role(IntEnum):
    VIEWER = 1
    MEMBER = 2
    MANAGER = 3
    OWNER = 4


ROLE_NAMES = {r.name.lower(): r for r in Role}

# Kinds of object that grants (Manage Access) apply to.
GRANTABLE = ("template", "project", "experiment", "environment", "license")

# action -> least role that may do it
ACTIONS: dict[str, Role] = {
    "environment.view": Role.VIEWER,
    "environment.use": Role.MEMBER,
    "environment.edit": Role.MANAGER,
    "template.view": Role.VIEWER,
    "template.view_config": Role.MEMBER,
    # What template.view_config asks for once a template is open source.
    "template.view_open_source_config": Role.VIEWER,
    "template.run": Role.MEMBER,
    "template.edit": Role.MANAGER,
    "project.view": Role.VIEWER,
    # Read the project's folder (list its experiments on disk).
    "project.read_data": Role.MEMBER,
    "project.edit": Role.MANAGER,
    "experiment.view": Role.VIEWER,
    "experiment.read_data": Role.MEMBER,
    "experiment.write_data": Role.MEMBER,
    "experiment.run_on": Role.MEMBER,
    "experiment.edit": Role.MANAGER,
    # Everyone with a role on the data sees the jobs run on it (Viewers read-only: status,
    # inputs, outputs, log, tags; no comments, no changes); visible_jobs filters lists
    # by this entry.
    "job.view": Role.VIEWER,
    # A plain sbatch script is the submitter's own (a template job's rendered script is
    # shown to whoever may see the template's configuration instead).
    "job.view_script": Role.OWNER,
    "job.cancel": Role.MANAGER,
    "job.tag": Role.MEMBER,
    # What job.tag asks for while the job has not started: only the person who ran it.
    "job.tag_before_start": Role.OWNER,
    "job.comment": Role.MEMBER,
    "job.share": Role.MEMBER,
    # Whoever may comment on a job reads its comments; only its author changes one.
    "comment.view": Role.MEMBER,
    "comment.edit": Role.OWNER,
    # Whoever may share a job sees its links; its creator or a Manager revokes one.
    "share_link.view": Role.MEMBER,
    "share_link.revoke": Role.MANAGER,
    "license.view": Role.MEMBER,
    "license.charge": Role.MEMBER,
    "license.view_all_usage": Role.MANAGER,
    # The sponsor changes the budget, within the site's sponsor_max_ values.
    "license.set_budget": Role.OWNER,
    # A team is seen (with its members) by its members; admins see every team.
    "team.view": Role.MEMBER,
    # Manage Access on every kind: Managers grant and revoke roles up to Manager; only
    # an Owner makes, changes or removes an Owner.
    **{f"{kind}.manage_access": Role.MANAGER for kind in GRANTABLE},
    **{f"{kind}.manage_owners": Role.OWNER for kind in GRANTABLE},
}

# Why an action is refused to someone who can see the object, where the generic
# "you may not ..." would not tell them who may.
REFUSALS: dict[str, str] = {
    "job.tag_before_start": "before a job starts, only the person who ran it may tag it",
    "share_link.revoke": "only its creator or a Manager may revoke a share link",
    "comment.edit": "only its author may change or delete a comment",
    **{f"{kind}.manage_owners": "only an owner may make, change or remove an owner"
       for kind in GRANTABLE},
}

KIND_OF = {"Template": "template", "Project": "project", "Experiment": "experiment",
           "Environment": "environment", "License": "license", "Job": "job",
           "ShareLink": "share_link", "Comment": "comment", "Team": "team"}


def job_started(job) -> bool:
    return job.started_at is not None or job.status != PENDING


# action -> (the entry that answers it instead, while this holds of the object)
STATE_RULES = {
    "template.view_config": ("template.view_open_source_config",
                             lambda tpl: bool(getattr(tpl, "open_source", False))),
    "job.tag": ("job.tag_before_start", lambda job: not job_started(job)),
}


def _effective(action: str, obj) -> str:
    """The table entry that answers ``action`` on ``obj`` in its present state."""
    rule = STATE_RULES.get(action)
    return rule[0] if rule is not None and rule[1](obj) else action


def least_role(action: str, obj) -> Role:
    return ACTIONS[_effective(action, obj)]


def object_key(obj) -> str:
    return obj.name if KIND_OF.get(type(obj).__name__) == "license" else str(obj.id)


def granted_roles(user, kind: str) -> dict[str, Role]:
    """object key -> strongest role granted to ``user`` or their teams, for one kind.

    One query per kind, cached on the user object for the request; the grant
    functions clear it when they change grants.
    """
    cache = user.__dict__.setdefault("_grant_cache", {})
    if kind not in cache:
        from .models import Grant

        roles: dict[str, Role] = {}
        for key, role in Grant.select(Grant.object_key, Grant.role).where(
                (Grant.kind == kind) & _granted_to(user)).tuples():
            r = ROLE_NAMES[role]
            if roles.get(key, 0) < r:
                roles[key] = r
        cache[kind] = roles
    return cache[kind]


def _granted_to(user):
    """SQL: a grant to ``user`` or to one of their teams."""
    from . import teams
    from .models import Grant

    return (Grant.user == user) | Grant.team.in_(teams.team_ids_query(user))


def forget_grants(user) -> None:
    user.__dict__.pop("_grant_cache", None)


def _best(*roles: Role | None) -> Role | None:
    return max((r for r in roles if r is not None), default=None)


def _license_role(user, lic) -> Role | None:
    from . import teams

    role = granted_roles(user, "license").get(lic.name)
    if getattr(lic, "sponsor", "") == user.username:
        return Role.OWNER
    for member in getattr(lic, "members", ()):
        if member.startswith("team:"):
            if member[5:] in teams.team_names(user):
                role = _best(role, Role.MEMBER)
        elif member == user.username:
            role = _best(role, Role.MEMBER)
    return role


def role_of(user, obj) -> Role | None:
    """The strongest role ``user`` holds on ``obj``, or None."""
    if user is None:
        return None
    kind = KIND_OF.get(type(obj).__name__)
    if kind == "comment":
        # A comment is its author's alone: everyone else, admins too, holds their role
        # on its job, up to Manager.
        if obj.author_id == user.id:
            return Role.OWNER
        on_job = role_of(user, obj.job)
        return min(on_job, Role.MANAGER) if on_job is not None else None
    if getattr(user, "is_admin", False):
        return Role.OWNER
    if kind == "job":
        if obj.user_id == user.id:
            return Role.OWNER  # the person who ran it
        data = _best(*(role_of(user, o) for o in (obj.experiment, obj.project) if o is not None))
        return min(data, Role.MANAGER) if data is not None else None
    if kind == "share_link":
        return Role.OWNER if obj.created_by_id == user.id else role_of(user, obj.job)
    if kind == "license":
        return _license_role(user, obj)
    if kind == "team":
        from . import teams

        return Role.MEMBER if obj.name in teams.team_names(user) else None
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


def require(user, action: str, obj, what: str = "", field: str | None = None) -> None:
    """Raise unless ``user`` may do ``action`` on ``obj``.

    Someone who cannot even see the object gets 404, so names of private things do
    not leak; someone who can see it but not do this gets 403, saying who may where
    the table's REFUSALS say it.
    """
    if can(user, action, obj):
        return
    kind = action.split(".")[0]
    view = f"{kind}.view"
    if view not in ACTIONS or not can(user, view, obj):
        raise NotFound(f"{what or kind} not found", field)
    effective = _effective(action, obj)
    why = REFUSALS.get(effective) or \
        f"you may not {action.split('.')[1].replace('_', ' ')} this {what or kind}"
    raise Forbidden(why, field)


def granting(kind: str, role_name: str) -> str:
    """The action that giving someone ``role_name`` on an object of ``kind`` (or
    changing or taking it away) is."""
    return f"{kind}.manage_owners" if ROLE_NAMES.get(role_name) == Role.OWNER else f"{kind}.manage_access"


def name_taken(user, existing, kind: str, name: str) -> Conflict:
    """The error for a name already in use. Names are unique site-wide, so the name
    cannot be given twice; but only someone who may see the holder learns it exists."""
    if can(user, f"{kind}.view", existing):
        return Conflict(f"{kind} {name!r} already exists", "name")
    return Conflict(f"the name {name!r} is not available: choose another", "name")


# --- lists: the same rules as role_of, as SQL -------------------------------------

def _model(kind: str):
    from .models import Environment, Experiment, Job, Project, Template

    return {"template": Template, "project": Project, "experiment": Experiment,
            "environment": Environment, "job": Job}[kind]


def ids_with_role(user, kind: str, least: Role):
    """SQL: the ids of the objects of ``kind`` on which ``user`` (not an admin) holds
    ``least`` or more: theirs, granted to them or a team of theirs, reached through
    the project (experiments), or public (for a role up to Member)."""
    from .models import Grant

    model = _model(kind)
    granted_keys = Grant.select(Grant.object_key).where(
        (Grant.kind == kind) & Grant.role.in_([n for n, r in ROLE_NAMES.items() if r >= least])
        & _granted_to(user))
    # Keys are text (a licence's is its name): compare the id as text, never the reverse.
    cond = (model.owner == user) | model.id.cast("TEXT").in_(granted_keys)
    if kind == "experiment":
        cond |= model.project.in_(ids_with_role(user, "project", least))
    if "public" in model._meta.fields and least <= Role.MEMBER:
        cond |= model.public == True  # noqa: E712 - SQL, not Python
    return model.select(model.id).where(cond)


def where_may(user, action: str, query, ids_first: bool = False):
    """``query`` (over the action's kind of object) restricted, in SQL, to the objects
    on which ``user`` may do ``action``. Not for the actions of STATE_RULES, whose
    least role depends on each object's state.

    ``ids_first`` (jobs): read the ids of the data the role is held on first, one more
    query, for a list over many jobs (see ``_data_ids``).
    """
    if action in STATE_RULES:
        raise ValueError(f"{action} depends on each object's state: ask can() per object")
    if getattr(user, "is_admin", False):
        return query
    kind = action.split(".")[0]
    least = ACTIONS[action]
    if kind == "team":  # Member of their own teams, nothing on any other
        from . import teams
        from .models import Team

        return query.where(Team.id.in_(teams.team_ids_query(user)) if least <= Role.MEMBER
                           else Team.id.is_null())
    if kind != "job":
        return query.where(_model(kind).id.in_(ids_with_role(user, kind, least)))
    from .models import Job

    # The person who ran a job owns it; everyone else holds their role on its data,
    # up to Manager.
    cond = Job.user == user
    if least <= Role.MANAGER:
        projects, experiments = _data_ids(user, least, ids_first)
        cond |= Job.project.in_(projects) | Job.experiment.in_(experiments)
    return query.where(cond)


# Above this many, a job list is filtered by the subqueries themselves.
MAX_LISTED_IDS = 1000


def _data_ids(user, least: Role, read: bool):
    """The projects and the experiments on which ``user`` holds ``least`` or more, for a
    job list's filter: as subqueries, or (``read``) as lists of ids read now, in one
    query, where there are few. Against a short list the database looks the jobs up in
    their indexes; against the subqueries PostgreSQL read every job (a Member's page of
    100,000 jobs cost two to three times as much)."""
    from peewee import Value

    subqueries = ids_with_role(user, "project", least), ids_with_role(user, "experiment", least)
    if not read:
        return subqueries
    both = (subqueries[0].select(Value("project"), _model("project").id)
            + subqueries[1].select(Value("experiment"), _model("experiment").id))
    found: dict[str, list[int]] = {"project": [], "experiment": []}
    for kind, key in both.tuples():
        found[kind].append(key)
    if len(found["project"]) + len(found["experiment"]) > MAX_LISTED_IDS:
        return subqueries
    return found["project"], found["experiment"]


def visible_jobs(user, query, ids_first: bool = False):
    """Restrict a Job query to what ``user`` may see (the ``job.view`` entry): jobs
    they ran, and every job on data where they hold that role."""
    return where_may(user, "job.view", query, ids_first)
