"""Sweeps: a template run over many inputs as one Slurm job array; each task is a job
that points back to its sweep and knows its index in the array. Jobs also keep when
they were cancelled through the gateway."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class Sweep(pw.Model):
        id = pw.AutoField()
        template = pw.ForeignKeyField(column_name="template_id", field="id", model=migrator.orm["template"])
        template_version = pw.ForeignKeyField(column_name="template_version_id", field="id",
                                              model=migrator.orm["template_version"])
        user = pw.ForeignKeyField(column_name="user_id", field="id", model=migrator.orm["user"])
        project = pw.ForeignKeyField(column_name="project_id", field="id", model=migrator.orm["project"])
        experiment = pw.ForeignKeyField(column_name="experiment_id", field="id", model=migrator.orm["experiment"])
        license = pw.CharField(max_length=64)
        mode = pw.CharField(default="product", max_length=8)
        throttle = pw.IntegerField()
        swept = pw.TextField()
        array_job_ids = pw.TextField()
        rerun_of = pw.ForeignKeyField(column_name="rerun_of_id", field="id", model="self", null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "sweep"

    migrator.add_fields(
        "job",
        sweep=pw.ForeignKeyField(column_name="sweep_id", field="id", model=migrator.orm["sweep"], null=True),
        array_task=pw.IntegerField(null=True),
        cancelled_at=pw.DateTimeField(null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("job", "sweep", "array_task", "cancelled_at")
    migrator.remove_model("sweep")
