"""Mark jobs whose sbatch timed out, so the poller keeps looking for their Slurm jobs."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("job", unconfirmed_submit=pw.BooleanField(default=False))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("job", "unconfirmed_submit")
