"""Arrays from plain scripts: an ``#SBATCH --array`` script sent through the sbatch
wrapper is a sweep too (each task a job of its own), one with no template and,
like any plain script, perhaps no experiment."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.drop_not_null("sweep", "template", "template_version", "project", "experiment")


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_not_null("sweep", "template", "template_version", "project", "experiment")
