"""Teams, grants, tags, comments, share links; Unix identity and local passwords for users;
open-source templates."""

from contextlib import suppress

import peewee as pw
from peewee_migrate import Migrator


with suppress(ImportError):
    import playhouse.postgres_ext as pw_pext


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""
    
    migrator.add_fields(
        'user',

        source=pw.CharField(default='local', max_length=16),
        email=pw.CharField(default='', max_length=200),
        uid_number=pw.IntegerField(null=True),
        gid_number=pw.IntegerField(null=True),
        password_hash=pw.CharField(max_length=255, null=True),
        last_login_at=pw.DateTimeField(null=True))

    migrator.add_fields(
        'job',

        unix_user=pw.CharField(default='', max_length=64))

    migrator.add_fields(
        'template',

        open_source=pw.BooleanField(default=False))

    @migrator.create_model
    class Comment(pw.Model):
        id = pw.AutoField()
        job = pw.ForeignKeyField(column_name='job_id', field='id', model=migrator.orm['job'], on_delete='CASCADE')
        author = pw.ForeignKeyField(column_name='author_id', field='id', model=migrator.orm['user'])
        body = pw.TextField()
        created_at = pw.DateTimeField()
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "comment"

    @migrator.create_model
    class Team(pw.Model):
        id = pw.AutoField()
        name = pw.CharField(max_length=128, unique=True)
        source = pw.CharField(default='ldap', max_length=16)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "team"

    @migrator.create_model
    class Grant(pw.Model):
        id = pw.AutoField()
        kind = pw.CharField(max_length=16)
        object_key = pw.CharField(max_length=128)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], null=True, on_delete='CASCADE')
        team = pw.ForeignKeyField(column_name='team_id', field='id', model=migrator.orm['team'], null=True, on_delete='CASCADE')
        role = pw.CharField(max_length=16)
        granted_by = pw.ForeignKeyField(column_name='granted_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "grant"
            indexes = [(('kind', 'object_key', 'user', 'team'), True)]

    @migrator.create_model
    class ShareLink(pw.Model):
        id = pw.AutoField()
        job = pw.ForeignKeyField(column_name='job_id', field='id', model=migrator.orm['job'], on_delete='CASCADE')
        token_hash = pw.CharField(max_length=64, unique=True)
        created_by = pw.ForeignKeyField(column_name='created_by_id', field='id', model=migrator.orm['user'])
        created_at = pw.DateTimeField()
        expires_at = pw.DateTimeField(null=True)
        revoked_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "share_link"

    @migrator.create_model
    class Tag(pw.Model):
        id = pw.AutoField()
        job = pw.ForeignKeyField(column_name='job_id', field='id', model=migrator.orm['job'], on_delete='CASCADE')
        name = pw.CharField(index=True, max_length=64)
        created_by = pw.ForeignKeyField(column_name='created_by_id', field='id', model=migrator.orm['user'])
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "tag"
            indexes = [(('job', 'name'), True)]

    @migrator.create_model
    class TeamMember(pw.Model):
        id = pw.AutoField()
        team = pw.ForeignKeyField(column_name='team_id', field='id', model=migrator.orm['team'], on_delete='CASCADE')
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')

        class Meta:
            table_name = "team_member"
            indexes = [(('team', 'user'), True)]


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    for table in ("team_member", "tag", "share_link", "grant", "comment", "team"):
        migrator.remove_model(table)
    migrator.remove_fields("template", "open_source")
    migrator.remove_fields("job", "unix_user")
    migrator.remove_fields("user", "source", "email", "uid_number", "gid_number",
                           "password_hash", "last_login_at")
