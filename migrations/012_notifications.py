"""Notifications: a job's choice, people's settings, and the outbox."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("job", notify=pw.CharField(max_length=8, default="none"))

    @migrator.create_model
    class NotificationPreference(pw.Model):
        user = pw.ForeignKeyField(column_name="user_id", field="id", model=migrator.orm["user"],
                                  primary_key=True, on_delete="CASCADE")
        on_job_end = pw.CharField(max_length=8, default="none")
        webhook_url = pw.CharField(max_length=500, default="")
        webhook_secret = pw.CharField(max_length=64, default="")

        class Meta:
            table_name = "notification_preference"

    @migrator.create_model
    class Notification(pw.Model):
        id = pw.AutoField()
        key = pw.CharField(max_length=200, unique=True)
        user = pw.ForeignKeyField(column_name="user_id", field="id", model=migrator.orm["user"],
                                  on_delete="CASCADE")
        channel = pw.CharField(max_length=8)
        subject = pw.CharField(max_length=300)
        body = pw.TextField()
        payload = pw.TextField(default="{}")
        created_at = pw.DateTimeField()
        attempts = pw.IntegerField(default=0)
        next_attempt_at = pw.DateTimeField(index=True)
        claimed_until = pw.DateTimeField(null=True)
        sent_at = pw.DateTimeField(null=True, index=True)
        last_error = pw.TextField(default="")

        class Meta:
            table_name = "notification"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("notification")
    migrator.remove_model("notification_preference")
    migrator.remove_fields("job", "notify")
