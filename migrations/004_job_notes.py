"""Notes on a job: what the gateway skipped among the files it left (links, FIFOs...)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("job", notes=pw.TextField(default="[]"))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("job", "notes")
