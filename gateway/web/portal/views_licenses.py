"""Licences and their usage: totals, and per person, per template and per day; the
budget (the sponsor changes it); the sponsor's Manage Access."""
from __future__ import annotations

import math
from datetime import timedelta

from flask import flash, redirect, render_template, request, url_for

from ... import access, budgets, licenses
from ...db import utcnow
from ...errors import GatewayError, Invalid
from . import portal
from .common import access_section, change_access, ctx, login_required, me

CHART_DAYS = 30
# The usage chart's geometry, in SVG pixels.
BAR, GAP, LEFT, TOP, HEIGHT = 16, 4, 64, 12, 160
TICKS = 5  # intervals on the hours axis


@portal.get("/licenses", endpoint="licenses")
@login_required
def licenses_page():
    rows = licenses.license_dicts(ctx(), licenses.list_licenses(ctx(), me()))
    return render_template("licenses.html", rows=rows)


def axis_top(peak: float) -> float:
    """The top of the hours axis: the smallest 1, 2, 2.5 or 5 times a power of ten that
    holds ``peak`` (1 hour when nothing was used), so its ticks are round numbers."""
    if peak <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(peak))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= peak * (1 - 1e-9))


def usage_chart(by_day: list[dict], days: int = CHART_DAYS) -> dict:
    """Bars (CPU under GPU hours) for each of the last ``days`` days, empty days
    included, with an hours axis of round ticks and a date under every seventh day."""
    today = utcnow().date()
    known = {d["day"]: d for d in by_day}
    series = [known.get(day, {"day": day, "jobs": 0, "cpu_hours": 0.0, "gpu_hours": 0.0})
              for day in ((today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1))]
    top = axis_top(max(d["cpu_hours"] + d["gpu_hours"] for d in series))

    def y(value: float) -> float:
        return round(TOP + HEIGHT - value / top * HEIGHT, 2)

    bars = []
    for i, d in enumerate(series):
        x = LEFT + i * (BAR + GAP)
        base, mid, peak = y(0), y(d["cpu_hours"]), y(d["cpu_hours"] + d["gpu_hours"])
        bars.append({"x": x, "day": d["day"], "cpu_hours": d["cpu_hours"], "gpu_hours": d["gpu_hours"],
                     "cpu_y": mid, "cpu_h": round(base - mid, 2),
                     "gpu_y": peak, "gpu_h": round(mid - peak, 2),
                     "label": d["day"] if (days - 1 - i) % 7 == 0 else ""})
    ticks = [{"y": y(top * k / TICKS), "label": f"{top * k / TICKS:g} h"} for k in range(TICKS + 1)]
    right = LEFT + days * (BAR + GAP)
    return {"bars": bars, "ticks": ticks, "width": right + 40, "height": TOP + HEIGHT + 56,
            "left": LEFT, "top": TOP, "bottom": y(0), "right": right, "bar": BAR,
            "empty": all(d["cpu_hours"] + d["gpu_hours"] == 0 for d in series)}


@portal.get("/licenses/<name>")
@login_required
def license_page(name):
    return _license_page(licenses.get_license(ctx(), me(), name))


def _license_page(lic, values: dict | None = None, errors: dict | None = None, status: int = 200):
    full = access.can(me(), "license.view_all_usage", lic)
    report = licenses.usage_report(ctx(), me(), lic.name, mine=not full, days=CHART_DAYS)
    budget = budgets.get_budget(ctx(), me(), lic)
    return render_template(
        "license.html", r=report, days=report["by_day"], chart=usage_chart(report["by_day"]),
        budget=budget, budget_state=budget_state(budget), v=values or budget, errors=errors or {},
        can_set_budget=access.can(me(), "license.set_budget", lic),
        **access_section(lic, "license")), status


def budget_state(budget: dict) -> list[dict]:
    """Each limit as a line to show: the share used (running jobs' reserve included),
    and whether it passed the soft threshold or is used up."""
    lines = []
    for kind in ("cpu", "gpu"):
        limit = budget[f"{kind}_hours"]
        if limit is None:
            continue
        used = budget["used"]
        spent = None if used is None else used[f"{kind}_hours"] + used[f"running_{kind}_hours"]
        share = None if spent is None else (100.0 if limit == 0 else 100.0 * spent / limit)
        lines.append({"kind": kind.upper(), "limit": limit, "spent": spent,
                      "left": (budget["remaining"] or {}).get(f"{kind}_hours"),
                      "percent": None if share is None else min(100.0, share),
                      "level": ("unknown" if share is None else "used-up" if share >= 100
                                else "soft" if share >= budget["soft_percent"] else "ok")})
    return lines


@portal.post("/licenses/<name>/budget")
@login_required
def license_budget(name):
    """The sponsor (or an admin) changes the budget; Slurm's limits follow."""
    lic = licenses.get_license(ctx(), me(), name)
    form = request.form

    def hours_or_none(key):
        text = form.get(key, "").strip()
        try:
            return None if text == "" else float(text)
        except ValueError:
            return text  # the service names the field and the problem
    values = {"cpu_hours": hours_or_none("cpu_hours"), "gpu_hours": hours_or_none("gpu_hours"),
              "period": form.get("period", ""),
              "soft_percent": int(form["soft_percent"]) if form.get("soft_percent", "").isdigit()
              else form.get("soft_percent")}
    try:
        budgets.set_budget(ctx(), me(), lic, values)
    except Invalid as e:
        return _license_page(lic, values, {p.field or "_": p.message for p in e.problems}, e.status)
    except GatewayError as e:
        return _license_page(lic, values, {e.field or "_": e.message}, e.status)
    flash("Budget saved; Slurm holds the new limits.")
    return redirect(url_for("portal.license_page", name=lic.name) + "#budget")


@portal.post("/licenses/<name>/access")
@login_required
def license_access(name):
    """The sponsor's Manage Access: grant or revoke a person's or a team's role."""
    lic = licenses.get_license(ctx(), me(), name)
    change_access(lic, request.form)
    return redirect(url_for("portal.license_page", name=lic.name) + "#access")
