"""Licences: who may charge them, and their usage (totals, per person, per template).

A licence's sponsor (Owner) and members (Member) come from the site config; the
sponsor grants more people and teams through Manage Access. The config's entries show
in the licence's access list marked ``source: config``: only the config changes them.
"""
from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

from peewee import JOIN, fn

from . import access, budgets
from .charging import license_usage
from .config import License
from .context import Context
from .db import utcnow
from .errors import Conflict, NotFound
from .hours import hours
from .models import Job, Template, User
from .slurm.states import FAILED


def get_license(ctx: Context, user: User, name: str) -> License:
    lic = ctx.config.license(name)
    if lic is None or not access.can(user, "license.view", lic):
        raise NotFound(f"license {name!r} not found", "license")
    return lic


def list_licenses(ctx: Context, user: User) -> list[License]:
    return [lic for lic in ctx.config.licenses.values() if access.can(user, "license.view", lic)]


def config_access(lic: License) -> list[dict]:
    """The licence's sponsor and members as the config names them (access list rows)."""
    rows = []
    if lic.sponsor:
        rows.append({"user": lic.sponsor, "team": None, "role": "owner", "source": "config"})
    for member in lic.members:
        team = member.removeprefix("team:") if member.startswith("team:") else None
        rows.append({"user": None if team else member, "team": team, "role": "member",
                     "source": "config"})
    return rows


def refuse_config_revoke(lic: License, user_name: str | None, team_name: str | None) -> None:
    """Refuse, saying why, to take away through the API a role the config gives."""
    for row in config_access(lic):
        if (user_name and row["user"] == user_name) or (team_name and row["team"] == team_name):
            who = f"user {user_name!r}" if user_name else f"team {team_name!r}"
            as_what = "sponsor" if row["role"] == "owner" else "member"
            raise Conflict(f"{who} is the {as_what} of licence {lic.name!r} in the site configuration "
                           f"(its [[licenses]] entry): an administrator changes it there, it cannot be "
                           f"revoked here", "user" if user_name else "team")


def license_dict(lic: License, usage: dict[str, tuple[int, int]] | None = None) -> dict:
    cpu_s, gpu_s = (usage if usage is not None else license_usage()).get(lic.name, (0, 0))
    return {"name": lic.name, "slurm_account": lic.slurm_account, "description": lic.description,
            "sponsor": lic.sponsor or None, "cpu_hours": hours(cpu_s), "gpu_hours": hours(gpu_s),
            "cpu_seconds": cpu_s, "gpu_seconds": gpu_s}


def license_dicts(ctx: Context, lics: list[License]) -> list[dict]:
    """Licences as the API lists them: usage recorded by the gateway, and each one's
    budget with what is used and left of it as Slurm counts (one Slurm call for all,
    made only when some licence has limits)."""
    usage = license_usage()
    in_force = {lic.name: budgets.effective(lic) for lic in lics}
    limited = [lic for lic in lics if budgets.has_limits(in_force[lic.name][0])]
    found, error = budgets.usages(ctx, limited) if limited else ({}, "")
    out = []
    for lic in lics:
        budget, row = in_force[lic.name]
        shown = budgets.budget_dict(lic, budget, row, found.get(lic.slurm_account),
                                    error if lic in limited else "")
        out.append({**license_dict(lic, usage), "budget": shown, "remaining": shown["remaining"]})
    return out


def _rows(query) -> list[dict]:
    return [{"name": name or "(plain sbatch)", "jobs": n, "cpu_seconds": int(c or 0),
             "gpu_seconds": int(g or 0), "cpu_hours": hours(int(c or 0)), "gpu_hours": hours(int(g or 0))}
            for name, n, c, g in query.tuples()]


def usage_report(ctx: Context, user: User, name: str, mine: bool = False, days: int = 30) -> dict:
    """Usage of a licence per person, per template and per day. All of it for its
    sponsor (and admins); with ``mine``, only the asking member's own jobs."""
    lic = get_license(ctx, user, name)
    if not mine:
        access.require(user, "license.view_all_usage", lic, "license")
    cond = Job.license == lic.name
    if mine:
        cond &= Job.user == user
    base = (fn.COUNT(Job.id), fn.SUM(Job.cpu_seconds), fn.SUM(Job.gpu_seconds))
    by_user = (Job.select(User.username, *base).join(User).where(cond)
               .group_by(User.username).order_by(User.username))
    by_template = (Job.select(Template.name, *base)
                   .join(Template, join_type=JOIN.LEFT_OUTER, on=(Job.template == Template.id))
                   .where(cond).group_by(Template.name).order_by(Template.name))
    since = utcnow() - timedelta(days=days)
    day = fn.date(Job.submitted_at).coerce(False)  # the database's date, not a datetime
    by_day = (Job.select(day, *base).where(cond & (Job.submitted_at >= since))
              .group_by(day).order_by(day))
    ended = (Job.select(Template.name, Job.status, Job.cpu_seconds, Job.efficiency)
             .join(Template, join_type=JOIN.LEFT_OUTER, on=(Job.template == Template.id))
             .where(cond & Job.finalized & (Job.submitted_at >= since)).tuples())
    return {**license_dict(lic), "scope": "mine" if mine else "all",
            "by_user": _rows(by_user), "by_template": _rows(by_template),
            "waste": waste_report(list(ended), days),
            "by_day": [{**r, "name": _iso_day(r["name"]), "day": _iso_day(r["name"])} for r in _rows(by_day)]}


def waste_report(rows: list[tuple], days: int) -> dict:
    """Ended jobs of the last ``days`` days, in all and per template: how many failed, the
    median share of their CPUs jobs kept busy, and the CPU hours lost to failed jobs
    and to idle CPUs of the rest (charged hours x the share left idle)."""
    def summary(group: list[tuple]) -> dict:
        failed = [r for r in group if r[1] == FAILED]
        shares = sorted(r[3]["cpu_percent"] for r in group if r[3] and r[3].get("cpu_percent") is not None)
        idle = sum(r[2] * (1 - min(100.0, (r[3] or {}).get("cpu_percent") or 0) / 100)
                   for r in group if r[1] != FAILED and r[3] and r[3].get("cpu_percent") is not None)
        return {"jobs": len(group), "failed": len(failed),
                "failure_rate": round(len(failed) / len(group), 4) if group else None,
                "median_cpu_percent": statistics.median(shares) if shares else None,
                "wasted_cpu_hours": hours(sum(r[2] for r in failed) + idle)}
    by_template: dict[str, list[tuple]] = {}
    for row in rows:
        by_template.setdefault(row[0] or "(plain sbatch)", []).append(row)
    return {"days": days, **summary(rows),
            "by_template": [{"name": name, **summary(group)} for name, group in sorted(by_template.items())]}


def _iso_day(value) -> str:
    """A day as ISO 8601 (``2026-11-26``), as SQLite (text) or PostgreSQL (a date) gives it."""
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, date) else str(value)[:10]
