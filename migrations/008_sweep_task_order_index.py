"""A sweep's tasks in task order straight from an index (job: sweep, array_task): its
first task (asked on every read of a sweep, to check who may see it), a page of its
tasks and its results table no longer sort every task of the sweep first."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_index("job", "sweep", "array_task")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.drop_index("job", "sweep", "array_task")
