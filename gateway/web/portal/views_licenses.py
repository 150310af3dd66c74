"""Licences and their usage: totals, and per person, per template and per day; the
sponsor's Manage Access."""
from __future__ import annotations

import math
from datetime import timedelta

from flask import redirect, render_template, request, url_for

from ... import access, licenses
from ...charging import license_usage
from ...db import utcnow
from . import portal
from .common import access_section, change_access, ctx, login_required, me

CHART_DAYS = 30
# The usage chart's geometry, in SVG pixels.
BAR, GAP, LEFT, TOP, HEIGHT = 16, 4, 64, 12, 160
TICKS = 5  # intervals on the hours axis


@portal.get("/licenses", endpoint="licenses")
@login_required
def licenses_page():
    usage = license_usage()
    rows = [licenses.license_dict(lic, usage) for lic in licenses.list_licenses(ctx(), me())]
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
    lic = licenses.get_license(ctx(), me(), name)
    full = access.can(me(), "license.view_all_usage", lic)
    report = licenses.usage_report(ctx(), me(), name, mine=not full, days=CHART_DAYS)
    return render_template(
        "license.html", r=report, days=report["by_day"], chart=usage_chart(report["by_day"]),
        **access_section(lic, "license"))


@portal.post("/licenses/<name>/access")
@login_required
def license_access(name):
    """The sponsor's Manage Access: grant or revoke a person's or a team's role."""
    lic = licenses.get_license(ctx(), me(), name)
    change_access(lic, request.form)
    return redirect(url_for("portal.license_page", name=lic.name) + "#access")
