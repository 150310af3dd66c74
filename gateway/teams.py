"""Teams: groups of people that roles are granted to.

LDAP groups become teams by themselves: at each login a person's LDAP teams are made
exactly the directory's groups. Local teams (``source = "local"``) are made and filled
by an administrator (``gateway teams``) and never touched by a login.
"""
from __future__ import annotations

from collections import defaultdict

from .db import database
from .errors import NotFound
from .models import Team, TeamMember, User
from .validation import check_name

LDAP, LOCAL = "ldap", "local"


def find_team(name: str) -> Team | None:
    return Team.get_or_none(Team.name == name)


def get_team(name: str, field: str = "team") -> Team:
    team = find_team(name)
    if team is None:
        raise NotFound(f"no team {name!r}", field)
    return team


def ensure_team(name: str, source: str = LOCAL) -> Team:
    """The team called ``name``, made (as ``source``) if there is none yet. Local names
    follow the name rule; an LDAP group keeps the directory's name."""
    team = find_team(name)
    if team is None:
        if source == LOCAL:
            check_name(name, "name")
        team = Team.create(name=name, source=source)
    return team


def add_member(team: Team, user: User) -> None:
    TeamMember.insert(team=team, user=user).on_conflict_ignore().execute()
    forget(user)


def remove_member(team: Team, user: User) -> bool:
    """Take ``user`` out of ``team``; says whether they were in it."""
    removed = TeamMember.delete().where(TeamMember.team == team, TeamMember.user == user).execute()
    forget(user)
    return bool(removed)


def sync_ldap_teams(user: User, groups: list[str]) -> bool:
    """Make ``user``'s LDAP teams exactly ``groups`` (local teams stay as they are);
    says whether they changed."""
    with database.atomic():
        wanted = {ensure_team(name, LDAP).id for name in groups}
        ldap_teams = Team.select(Team.id).where(Team.source == LDAP)
        before = {team_id for (team_id,) in TeamMember.select(TeamMember.team).where(
            TeamMember.user == user, TeamMember.team.in_(ldap_teams)).tuples()}
        TeamMember.delete().where(TeamMember.user == user, TeamMember.team.in_(ldap_teams),
                                  TeamMember.team.not_in(wanted or [-1])).execute()
        for team_id in wanted - before:
            TeamMember.insert(team=team_id, user=user).on_conflict_ignore().execute()
    forget(user)
    return before != wanted


# --- what access asks: a person's teams, cached on the user object for the request ---

def team_ids_query(user: User):
    """SQL: the ids of ``user``'s teams (for filtering grants inside one query)."""
    return TeamMember.select(TeamMember.team).where(TeamMember.user == user)


def team_names(user: User) -> set[str]:
    cached = user.__dict__.get("_team_names")
    if cached is None:
        cached = {name for (name,) in Team.select(Team.name).join(TeamMember)
                  .where(TeamMember.user == user).tuples()}
        user.__dict__["_team_names"] = cached
    return cached


def forget(user: User) -> None:
    """Drop what is cached on ``user`` about their teams (after they changed)."""
    user.__dict__.pop("_team_names", None)
    user.__dict__.pop("_grant_cache", None)


# --- listing ------------------------------------------------------------------------

def list_teams(user: User | None) -> list[Team]:
    """The teams ``user`` may see (every team with no user: the command line), with
    their members loaded up front: two queries."""
    from . import access

    query = Team.select().order_by(Team.name)
    if user is not None:
        query = access.where_may(user, "team.view", query)
    teams = list(query)
    members: dict[int, list[str]] = defaultdict(list)
    for team_id, username in (TeamMember.select(TeamMember.team, User.username).join(User)
                              .where(TeamMember.team.in_([t.id for t in teams]))
                              .order_by(User.username).tuples()):
        members[team_id].append(username)
    for t in teams:
        t.member_names = members[t.id]
    return teams


def member_names(team: Team) -> list[str]:
    loaded = team.__dict__.get("member_names")
    if loaded is not None:
        return loaded
    return [u for (u,) in User.select(User.username).join(TeamMember)
            .where(TeamMember.team == team).order_by(User.username).tuples()]


def team_dict(team: Team) -> dict:
    return {"name": team.name, "source": team.source, "members": member_names(team)}
