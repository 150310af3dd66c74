"""Licence budgets set through the API, and since when each licence's Slurm usage
counts (the start of its current budget period)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class LicenseBudget(pw.Model):
        license = pw.CharField(max_length=64, primary_key=True)
        cpu_hours = pw.FloatField(null=True)
        gpu_hours = pw.FloatField(null=True)
        period = pw.CharField(max_length=16, default="month")
        soft_percent = pw.IntegerField(default=80)
        set_by = pw.CharField(max_length=64, default="")
        set_at = pw.DateTimeField(null=True)
        usage_since = pw.DateTimeField(null=True)

        class Meta:
            table_name = "license_budget"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("license_budget")
