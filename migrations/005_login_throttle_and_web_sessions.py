"""Failed logins (for throttling) and browser sessions the server can end."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class LoginFailure(pw.Model):
        id = pw.AutoField()
        key = pw.CharField(max_length=100, index=True)
        at = pw.DateTimeField(index=True)

        class Meta:
            table_name = "login_failure"

    @migrator.create_model
    class WebSession(pw.Model):
        id = pw.AutoField()
        sid_hash = pw.CharField(max_length=64, unique=True)
        user = pw.ForeignKeyField(column_name="user_id", field="id", model=migrator.orm["user"],
                                  on_delete="CASCADE")
        created_at = pw.DateTimeField()
        expires_at = pw.DateTimeField(index=True)

        class Meta:
            table_name = "web_session"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("web_session")
    migrator.remove_model("login_failure")
