"""Initial schema: users, tokens, environments, templates, projects, jobs, poller lease."""

from contextlib import suppress

import peewee as pw
from peewee_migrate import Migrator


with suppress(ImportError):
    import playhouse.postgres_ext as pw_pext


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""
    
    @migrator.create_model
    class User(pw.Model):
        id = pw.AutoField()
        username = pw.CharField(max_length=64, unique=True)
        display_name = pw.CharField(default='', max_length=200)
        is_admin = pw.BooleanField(default=False)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "user"

    @migrator.create_model
    class ApiToken(pw.Model):
        id = pw.AutoField()
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        name = pw.CharField(default='', max_length=100)
        token_hash = pw.CharField(max_length=64, unique=True)
        created_at = pw.DateTimeField()
        last_used_at = pw.DateTimeField(null=True)
        revoked_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "api_token"

    @migrator.create_model
    class Environment(pw.Model):
        id = pw.AutoField()
        name = pw.CharField(max_length=64, unique=True)
        description = pw.TextField(default='')
        public = pw.BooleanField(default=False)
        owner = pw.ForeignKeyField(column_name='owner_id', field='id', model=migrator.orm['user'])
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "environment"

    @migrator.create_model
    class EnvironmentVersion(pw.Model):
        id = pw.AutoField()
        environment = pw.ForeignKeyField(column_name='environment_id', field='id', model=migrator.orm['environment'], on_delete='CASCADE')
        version = pw.CharField(max_length=64)
        setup = pw.TextField(default='')
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "environment_version"
            indexes = [(('environment', 'version'), True)]

    @migrator.create_model
    class Project(pw.Model):
        id = pw.AutoField()
        name = pw.CharField(max_length=64, unique=True)
        owner = pw.ForeignKeyField(column_name='owner_id', field='id', model=migrator.orm['user'])
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "project"

    @migrator.create_model
    class Experiment(pw.Model):
        id = pw.AutoField()
        project = pw.ForeignKeyField(column_name='project_id', field='id', model=migrator.orm['project'], on_delete='CASCADE')
        name = pw.CharField(max_length=64)
        owner = pw.ForeignKeyField(column_name='owner_id', field='id', model=migrator.orm['user'])
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "experiment"
            indexes = [(('project', 'name'), True)]

    @migrator.create_model
    class Template(pw.Model):
        id = pw.AutoField()
        name = pw.CharField(max_length=64, unique=True)
        description = pw.TextField(default='')
        owner = pw.ForeignKeyField(column_name='owner_id', field='id', model=migrator.orm['user'])
        status = pw.CharField(default='unvalidated', max_length=16)
        public = pw.BooleanField(default=False)
        latest_version = pw.IntegerField(default=1)
        created_at = pw.DateTimeField()
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "template"

    @migrator.create_model
    class TemplateVersion(pw.Model):
        id = pw.AutoField()
        template = pw.ForeignKeyField(column_name='template_id', field='id', model=migrator.orm['template'], on_delete='CASCADE')
        version = pw.IntegerField()
        language = pw.CharField(max_length=16)
        script = pw.TextField()
        environment_version = pw.ForeignKeyField(column_name='environment_version_id', field='id', model=migrator.orm['environment_version'])
        python_executable = pw.CharField(default='', max_length=255)
        inputs = pw.TextField()
        outputs = pw.TextField()
        files = pw.TextField()
        created_by = pw.ForeignKeyField(column_name='created_by_id', field='id', model=migrator.orm['user'])
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "template_version"
            indexes = [(('template', 'version'), True)]

    @migrator.create_model
    class Job(pw.Model):
        id = pw.AutoField()
        kind = pw.CharField(default='template', max_length=16)
        name = pw.CharField(default='', max_length=128)
        template = pw.ForeignKeyField(column_name='template_id', field='id', model=migrator.orm['template'], null=True)
        template_version = pw.ForeignKeyField(column_name='template_version_id', field='id', model=migrator.orm['template_version'], null=True)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'])
        project = pw.ForeignKeyField(column_name='project_id', field='id', model=migrator.orm['project'], null=True)
        experiment = pw.ForeignKeyField(column_name='experiment_id', field='id', model=migrator.orm['experiment'], null=True)
        license = pw.CharField(index=True, max_length=64)
        slurm_account = pw.CharField(max_length=64)
        machine_type = pw.CharField(default='', max_length=64)
        partition = pw.CharField(default='', max_length=64)
        software_disk_gb = pw.IntegerField(default=0)
        time_limit_minutes = pw.IntegerField()
        inputs = pw.TextField()
        slurm_job_id = pw.CharField(max_length=32, null=True, unique=True)
        status = pw.CharField(default='Pending', index=True, max_length=16)
        slurm_state = pw.CharField(default='', max_length=32)
        reason = pw.TextField(default='')
        exit_code = pw.IntegerField(null=True)
        output_variables = pw.TextField()
        output_files = pw.TextField()
        alloc_cpus = pw.IntegerField(default=0)
        alloc_gpus = pw.IntegerField(default=0)
        elapsed_seconds = pw.IntegerField(default=0)
        cpu_seconds = pw.BigIntegerField(default=0)
        gpu_seconds = pw.BigIntegerField(default=0)
        submitted_at = pw.DateTimeField(index=True)
        started_at = pw.DateTimeField(null=True)
        ended_at = pw.DateTimeField(null=True)
        finalized = pw.BooleanField(default=False, index=True)

        class Meta:
            table_name = "job"

    @migrator.create_model
    class PollerLease(pw.Model):
        name = pw.CharField(max_length=32, primary_key=True)
        holder = pw.CharField(max_length=128)
        expires_at = pw.DateTimeField()

        class Meta:
            table_name = "poller_lease"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your rollback migrations here."""
    
    migrator.remove_model('poller_lease')

    migrator.remove_model('job')

    migrator.remove_model('template_version')

    migrator.remove_model('template')

    migrator.remove_model('experiment')

    migrator.remove_model('project')

    migrator.remove_model('environment_version')

    migrator.remove_model('environment')

    migrator.remove_model('api_token')

    migrator.remove_model('user')
