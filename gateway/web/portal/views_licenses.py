"""Licences and their usage: totals, and per person, per template and per day."""
from __future__ import annotations

from flask import render_template

from ... import access, licenses
from ...charging import license_usage
from . import portal
from .common import ctx, login_required, me


@portal.get("/licenses", endpoint="licenses")
@login_required
def licenses_page():
    usage = license_usage()
    rows = [licenses.license_dict(lic, usage) for lic in licenses.list_licenses(ctx(), me())]
    return render_template("licenses.html", rows=rows)


@portal.get("/licenses/<name>")
@login_required
def license_page(name):
    lic = licenses.get_license(ctx(), me(), name)
    full = access.can(me(), "license.view_all_usage", lic)
    report = licenses.usage_report(ctx(), me(), name, mine=not full)
    days = report["by_day"]
    peak = max([d["cpu_hours"] + d["gpu_hours"] for d in days] + [1e-9])
    return render_template("license.html", r=report, days=days, peak=peak)
