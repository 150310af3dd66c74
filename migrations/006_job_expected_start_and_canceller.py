"""Job details: when Slurm expects a pending job to start (squeue's estimate), and who
cancelled a job through the gateway (by user name: Slurm only knows a Unix uid)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields(
        "job",
        expected_start_at=pw.DateTimeField(null=True),
        cancelled_by=pw.CharField(default="", max_length=64))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("job", "expected_start_at", "cancelled_by")
