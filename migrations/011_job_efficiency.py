"""What a finished job used against what it asked for (CPU, memory, time), read once
from accounting (JSON text; null until read)."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("job", efficiency=pw.TextField(null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("job", "efficiency")
