"""Licence budgets: limits that hold, because Slurm holds them.

A licence's budget (CPU and GPU hours per period) comes from its config entry, or from
its sponsor or an admin through the API (a ``LicenseBudget`` row, which wins). The hard
limit is the Slurm account's GrpTRESMins: the controller counts every job charged to
the account, from the gateway or a plain ``sbatch --account`` alike, and with "safe"
enforcement starts none that could pass it. The gateway adds a refusal before submit
(a run whose worst case would pass what is left), a reset of the account's usage when
a period begins, and a check that Slurm's limits equal the budgets.

Usage here is Slurm's: minutes used this period plus minutes the running jobs may still
use, which is what "safe" enforcement compares a new job with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from . import access
from .config import BUDGET_PERIODS, Budget, License, MachineType
from .context import Context
from .db import database, iso, utcnow
from .errors import SlurmError, ValidationError
from .hours import format_hours
from .models import LicenseBudget, User
from .slurm.client import AccountUsage
from .validation import Problems, require_dict

MINUTES_PER_HOUR = 60


def period_start(period: str, now: datetime) -> datetime | None:
    """When the calendar period holding ``now`` (naive UTC) began; None for "none"."""
    if period == "month":
        return datetime(now.year, now.month, 1)
    if period == "quarter":
        return datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1)
    if period == "year":
        return datetime(now.year, 1, 1)
    return None


def effective(lic: License) -> tuple[Budget, LicenseBudget | None]:
    """The budget in force: the one set through the API, else the config's."""
    row = LicenseBudget.get_or_none(LicenseBudget.license == lic.name)
    if row is not None and row.set_by:
        return replace(lic.budget, cpu_hours=row.cpu_hours, gpu_hours=row.gpu_hours,
                       period=row.period, soft_percent=row.soft_percent), row
    return lic.budget, row


def has_limits(budget: Budget) -> bool:
    return budget.cpu_hours is not None or budget.gpu_hours is not None


def minutes(hours: float | None) -> int | None:
    """Budget hours as Slurm's whole TRES-minutes (rounded down: the limit never grows)."""
    return None if hours is None else int(math.floor(hours * MINUTES_PER_HOUR + 1e-9))


def _kinds(budget: Budget, usage: AccountUsage):
    """Per TRES: (kind, limit in hours or None, minutes used, minutes running jobs hold)."""
    return (("cpu", budget.cpu_hours, usage.cpu_minutes_used, usage.cpu_minutes_running),
            ("gpu", budget.gpu_hours, usage.gpu_minutes_used, usage.gpu_minutes_running))


def _left_minutes(limit_h: float, used: int, running: int) -> int:
    """What Slurm's "safe" enforcement leaves for a new job under a limit."""
    return minutes(limit_h) - used - running


def budget_dict(lic: License, budget: Budget, row: LicenseBudget | None,
                usage: AccountUsage | None, error: str = "") -> dict:
    """A licence's budget as the API shows it: limits, what is used and left (from
    Slurm; null with ``usage_error`` when Slurm could not be asked)."""
    used = None if usage is None else {
        "cpu_hours": round(usage.cpu_minutes_used / MINUTES_PER_HOUR, 6),
        "gpu_hours": round(usage.gpu_minutes_used / MINUTES_PER_HOUR, 6),
        "running_cpu_hours": round(usage.cpu_minutes_running / MINUTES_PER_HOUR, 6),
        "running_gpu_hours": round(usage.gpu_minutes_running / MINUTES_PER_HOUR, 6)}
    out = {
        "cpu_hours": budget.cpu_hours, "gpu_hours": budget.gpu_hours, "period": budget.period,
        "soft_percent": budget.soft_percent,
        "source": "api" if row is not None and row.set_by else "config",
        "set_by": row.set_by or None if row is not None else None,
        "set_at": iso(row.set_at) if row is not None else None,
        "period_start": iso(period_start(budget.period, utcnow())),
        "sponsor_max_cpu_hours": lic.budget.sponsor_max_cpu_hours,
        "sponsor_max_gpu_hours": lic.budget.sponsor_max_gpu_hours,
        "used": used,
        "remaining": None if not has_limits(budget) or usage is None else {
            f"{kind}_hours": None if limit_h is None
            else round(max(0, _left_minutes(limit_h, used, running)) / MINUTES_PER_HOUR, 6)
            for kind, limit_h, used, running in _kinds(budget, usage)},
    }
    if error:
        out["usage_error"] = error
    return out


def usages(ctx: Context, lics: list[License]) -> tuple[dict[str, AccountUsage], str]:
    """Slurm's usage of the licences' accounts in one call, or ({}, why) when Slurm
    cannot be asked: a licence list still shows, with its usage unknown."""
    accounts = sorted({lic.slurm_account for lic in lics})
    try:
        return ctx.slurm.account_usage(accounts), ""
    except SlurmError as e:
        return {}, e.message


def get_budget(ctx: Context, user: User, lic: License) -> dict:
    budget, row = effective(lic)
    found, error = usages(ctx, [lic])
    return budget_dict(lic, budget, row, found.get(lic.slurm_account), error)


def set_budget(ctx: Context, user: User, lic: License, body: dict) -> dict:
    """Change a licence's budget: its sponsor, up to the config's sponsor_max_ values,
    or an admin. Slurm's limit changes first; if Slurm refuses, nothing changes."""
    access.require(user, "license.set_budget", lic, "license")
    require_dict(body)
    current, _ = effective(lic)
    problems = Problems()
    known = ("cpu_hours", "gpu_hours", "period", "soft_percent")
    for key in body:
        if key not in known:
            problems.add(ValidationError(f"unknown field; expected one of {', '.join(known)}", key))
    values = {}
    for key in ("cpu_hours", "gpu_hours"):
        value = body.get(key, getattr(current, key))
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            problems.add(ValidationError("must be a number of hours, 0 or more, or null for no limit", key))
            continue
        cap = getattr(lic.budget, f"sponsor_max_{key}")
        if not user.is_admin and cap is not None and (value is None or value > cap):
            problems.add(ValidationError(
                f"a sponsor may set at most {format_hours(cap)} hours here (the site's limit for "
                f"licence {lic.name!r}); ask an administrator for more", key))
            continue
        values[key] = None if value is None else float(value)
    period = body.get("period", current.period)
    if period not in BUDGET_PERIODS:
        problems.add(ValidationError(f"must be one of {', '.join(BUDGET_PERIODS)}", "period"))
    soft = body.get("soft_percent", current.soft_percent)
    if isinstance(soft, bool) or not isinstance(soft, int) or not 1 <= soft <= 100:
        problems.add(ValidationError("must be a whole number between 1 and 100", "soft_percent"))
    problems.raise_any()
    ctx.slurm.set_account_limits(lic.slurm_account, minutes(values["cpu_hours"]),
                                 minutes(values["gpu_hours"]))
    with database.atomic():
        row = LicenseBudget.get_or_none(LicenseBudget.license == lic.name)
        fields = dict(cpu_hours=values["cpu_hours"], gpu_hours=values["gpu_hours"], period=period,
                      soft_percent=soft, set_by=user.username, set_at=utcnow())
        if row is None:
            LicenseBudget.create(license=lic.name, usage_since=None, **fields)
        else:
            LicenseBudget.update(**fields).where(LicenseBudget.license == lic.name).execute()
    return get_budget(ctx, user, lic)


@dataclass(frozen=True)
class WorstCase:
    """What a run may use at most: every CPU and GPU it asks for, for its whole time
    limit, in every task (the same formula as the charge, at its largest)."""
    cpu_minutes: int
    gpu_minutes: int
    words: str  # "2 CPUs x 60 minutes x 3 tasks"


def worst_case(mt: MachineType, time_limit_minutes: int, tasks: int = 1) -> WorstCase:
    words = f"{mt.cpus} CPU{'s' * (mt.cpus != 1)}"
    if mt.gpus:
        words += f" and {mt.gpus} GPU{'s' * (mt.gpus != 1)}"
    words += f" for {time_limit_minutes} minutes"
    if tasks != 1:
        words += f", in each of {tasks} tasks"
    return WorstCase(mt.cpus * time_limit_minutes * tasks, mt.gpus * time_limit_minutes * tasks, words)


def cost_dict(ctx: Context, lic: License, mt: MachineType, time_limit_minutes: int,
              tasks: int = 1) -> dict:
    """A run's worst-case cost before it is submitted, and what its licence would have
    left after it (null without a limit; ``fits`` false when the gateway would refuse it)."""
    need = worst_case(mt, time_limit_minutes, tasks)
    out = {"cpu_hours": round(need.cpu_minutes / MINUTES_PER_HOUR, 6),
           "gpu_hours": round(need.gpu_minutes / MINUTES_PER_HOUR, 6),
           "worst_case": need.words, "license": lic.name, "left_after": None, "fits": None}
    budget, _ = effective(lic)
    if not has_limits(budget):
        return out
    try:
        usage = ctx.slurm.account_usage([lic.slurm_account]).get(lic.slurm_account)
    except SlurmError as e:
        return {**out, "usage_error": e.message}
    if usage is None:
        return out
    want = {"cpu": need.cpu_minutes, "gpu": need.gpu_minutes}
    after = {f"{kind}_hours": None if limit_h is None
             else round((_left_minutes(limit_h, used, running) - want[kind]) / MINUTES_PER_HOUR, 6)
             for kind, limit_h, used, running in _kinds(budget, usage)}
    return {**out, "left_after": after,
            "fits": all(v is None or v >= 0 for v in after.values()), "period": budget.period}


def refuse_past_budget(ctx: Context, lic: License, mt: MachineType, time_limit_minutes: int,
                       tasks: int = 1) -> None:
    """Refuse (field ``license``) a run whose worst case would pass what the licence has
    left this period, saying the numbers; Slurm would hold such a job for good."""
    budget, _ = effective(lic)
    if not has_limits(budget):
        return
    account = lic.slurm_account
    usage = ctx.slurm.account_usage([account]).get(account, AccountUsage(account))
    need = worst_case(mt, time_limit_minutes, tasks)
    period = "" if budget.period == "none" else f" this {budget.period}"
    wants = {"cpu": need.cpu_minutes, "gpu": need.gpu_minutes}
    for kind, limit_h, used, running in _kinds(budget, usage):
        want, kind = wants[kind], kind.upper()
        if limit_h is None or not want:
            continue
        left = _left_minutes(limit_h, used, running)
        if want > left:
            raise ValidationError(
                f"this run may use up to {format_hours(want / 60)} {kind} hours ({need.words}), but "
                f"licence {lic.name!r} has {format_hours(max(0, left) / 60)} of its "
                f"{format_hours(limit_h)} {kind} hours left{period} "
                f"({format_hours(used / 60)} used, {format_hours(running / 60)} held by running jobs): "
                f"choose a smaller machine type or time limit, or ask the sponsor to raise the budget",
                "license")


def drift(ctx: Context, fix: bool = False) -> list[str]:
    """Every licence whose Slurm account's limits differ from its budget, in words;
    with ``fix``, each is set to the budget."""
    lics = list(ctx.config.licenses.values())
    found = ctx.slurm.account_usage(sorted({lic.slurm_account for lic in lics}))
    out = []
    for lic in lics:
        budget, _ = effective(lic)
        usage = found.get(lic.slurm_account)
        if usage is None:
            continue  # a missing account is reported by the Slurm config check
        want = (minutes(budget.cpu_hours), minutes(budget.gpu_hours))
        have = (usage.cpu_minutes_limit, usage.gpu_minutes_limit)
        if want != have:
            def show(m):
                return "none" if m is None else f"{m} min"
            out.append(f"licenses[{lic.name}].budget: Slurm account {lic.slurm_account!r} has GrpTRESMins "
                       f"cpu={show(have[0])}, gres/gpu={show(have[1])}; the budget says "
                       f"cpu={show(want[0])}, gres/gpu={show(want[1])}")
            if fix:
                ctx.slurm.set_account_limits(lic.slurm_account, *want)
    return out


def start_periods(ctx: Context, now: datetime | None = None) -> list[str]:
    """Reset the Slurm usage of every licence with limits whose budget period began
    since its usage was last reset (or that was never reset): the poller runs this.
    The reset comes first and is recorded after, so a crash between repeats the reset
    at worst (which costs the minutes used in between, never a double count)."""
    now = now or utcnow()
    started = []
    for lic in ctx.config.licenses.values():
        budget, row = effective(lic)
        if not has_limits(budget):
            continue
        start = period_start(budget.period, now)
        since = row.usage_since if row is not None else None
        if since is not None and (start is None or since >= start):
            continue
        ctx.slurm.reset_account_usage(lic.slurm_account)
        if row is None:
            LicenseBudget.create(license=lic.name, period=budget.period, soft_percent=budget.soft_percent,
                                 usage_since=now)
        else:
            LicenseBudget.update(usage_since=now).where(LicenseBudget.license == lic.name).execute()
        started.append(lic.name)
    return started


def tell_sponsors(ctx: Context, now: datetime | None = None) -> int:
    """Each licence whose usage this period passed its soft threshold or its limit tells
    its sponsor, once per period and level (the outbox's key). One Slurm call for all."""
    from . import notifications

    now = now or utcnow()
    lics = [lic for lic in ctx.config.licenses.values() if lic.sponsor]
    in_force = {lic.name: effective(lic)[0] for lic in lics}
    lics = [lic for lic in lics if has_limits(in_force[lic.name])]
    if not lics:
        return 0
    found = ctx.slurm.account_usage(sorted({lic.slurm_account for lic in lics}))
    told = 0
    for lic in lics:
        budget, usage = in_force[lic.name], found.get(lic.slurm_account)
        sponsor = User.get_or_none(User.username == lic.sponsor)
        if usage is None or sponsor is None:
            continue
        shares = [100.0 * used / (limit_h * MINUTES_PER_HOUR) if limit_h else 100.0
                  for _, limit_h, used, _ in _kinds(budget, usage) if limit_h is not None]
        share = max(shares)
        level = "limit" if share >= 100 else "soft" if share >= budget.soft_percent else ""
        if not level:
            continue
        start = period_start(budget.period, now)
        with database.atomic():
            told += notifications.budget_passed(ctx.config, lic, sponsor, level,
                                                start.date().isoformat() if start else "all", share)
    return told


def keep(ctx: Context) -> list[str]:
    """What the poller runs every few minutes: new periods started, sponsors told."""
    started = start_periods(ctx)
    tell_sponsors(ctx)
    return started
