"""Peewee models. The schema is created and changed only by migrations in migrations/."""
from __future__ import annotations

import peewee as pw

from .db import JSONField, database, utcnow
from .slurm.states import PENDING


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel):
    username = pw.CharField(max_length=64, unique=True)
    display_name = pw.CharField(max_length=200, default="")
    is_admin = pw.BooleanField(default=False)
    created_at = pw.DateTimeField(default=utcnow)
    source = pw.CharField(max_length=16, default="local")  # local | ldap
    email = pw.CharField(max_length=200, default="")
    # Unix identity from LDAP (posixAccount): jobs may run as this user.
    uid_number = pw.IntegerField(null=True)
    gid_number = pw.IntegerField(null=True)
    # Local accounts only (admins, tests): a werkzeug password hash.
    password_hash = pw.CharField(max_length=255, null=True)
    last_login_at = pw.DateTimeField(null=True)


class LoginFailure(BaseModel):
    """One failed login, counted per ``user:<name>`` and ``addr:<client>`` key."""

    key = pw.CharField(max_length=100, index=True)
    at = pw.DateTimeField(index=True)


class WebSession(BaseModel):
    """A browser session; the cookie holds the id, this table only its SHA-256."""

    sid_hash = pw.CharField(max_length=64, unique=True)
    user = pw.ForeignKeyField(User, backref="web_sessions", on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField(index=True)


class Team(BaseModel):
    """A group of people; LDAP groups become teams, refreshed at each login."""

    name = pw.CharField(max_length=128, unique=True)
    source = pw.CharField(max_length=16, default="ldap")  # ldap | local
    created_at = pw.DateTimeField(default=utcnow)


class TeamMember(BaseModel):
    team = pw.ForeignKeyField(Team, backref="members", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, backref="team_links", on_delete="CASCADE")

    class Meta:
        indexes = ((("team", "user"), True),)


class Grant(BaseModel):
    """A role on one object (template, project, experiment, environment, licence) given
    to a person or a team. ``object_key`` is the object's id, or a licence's name."""

    kind = pw.CharField(max_length=16)
    object_key = pw.CharField(max_length=128)
    user = pw.ForeignKeyField(User, null=True, backref="grants", on_delete="CASCADE")
    team = pw.ForeignKeyField(Team, null=True, backref="grants", on_delete="CASCADE")
    role = pw.CharField(max_length=16)
    granted_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "object_key", "user", "team"), True),)


class ApiToken(BaseModel):
    user = pw.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    name = pw.CharField(max_length=100, default="")
    # Only a SHA-256 of the token is kept; the token itself is shown once.
    token_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    last_used_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)


class Environment(BaseModel):
    name = pw.CharField(max_length=64, unique=True)
    description = pw.TextField(default="")
    public = pw.BooleanField(default=False)
    owner = pw.ForeignKeyField(User, backref="environments")
    created_at = pw.DateTimeField(default=utcnow)


class EnvironmentVersion(BaseModel):
    environment = pw.ForeignKeyField(Environment, backref="versions", on_delete="CASCADE")
    version = pw.CharField(max_length=64)
    setup = pw.TextField(default="")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("environment", "version"), True),)


class Template(BaseModel):
    name = pw.CharField(max_length=64, unique=True)
    description = pw.TextField(default="")
    owner = pw.ForeignKeyField(User, backref="templates")
    status = pw.CharField(max_length=16, default="unvalidated")
    public = pw.BooleanField(default=False)
    # Viewers see the configuration (script, inputs, files) only of open-source templates.
    open_source = pw.BooleanField(default=False)
    latest_version = pw.IntegerField(default=1)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)


class TemplateVersion(BaseModel):
    template = pw.ForeignKeyField(Template, backref="versions", on_delete="CASCADE")
    version = pw.IntegerField()
    language = pw.CharField(max_length=16)
    script = pw.TextField()
    environment_version = pw.ForeignKeyField(EnvironmentVersion)
    python_executable = pw.CharField(max_length=255, default="")
    inputs = JSONField(default=list)
    outputs = JSONField(default=list)
    # [{name, sha256, size}]: contents live in the blob store, so versions share files.
    files = JSONField(default=list)
    created_by = pw.ForeignKeyField(User)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("template", "version"), True),)


class Project(BaseModel):
    name = pw.CharField(max_length=64, unique=True)
    owner = pw.ForeignKeyField(User, backref="projects")
    created_at = pw.DateTimeField(default=utcnow)


class Experiment(BaseModel):
    project = pw.ForeignKeyField(Project, backref="experiments", on_delete="CASCADE")
    name = pw.CharField(max_length=64)
    owner = pw.ForeignKeyField(User)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("project", "name"), True),)


class Sweep(BaseModel):
    """One run of a template over many inputs: one Slurm job array (several above the
    cluster's MaxArraySize), each task a Job of its own that points back here. A plain
    script's own ``#SBATCH --array`` is a sweep too, with no template (and, like any
    plain script, perhaps no experiment)."""

    template = pw.ForeignKeyField(Template, backref="sweeps", null=True)
    template_version = pw.ForeignKeyField(TemplateVersion, null=True)
    user = pw.ForeignKeyField(User, backref="sweeps")
    project = pw.ForeignKeyField(Project, null=True)
    experiment = pw.ForeignKeyField(Experiment, null=True)
    license = pw.CharField(max_length=64)
    mode = pw.CharField(max_length=8, default="product")  # product | zip
    # How many tasks Slurm may run at once (sbatch --array=...%throttle).
    throttle = pw.IntegerField()
    # The names of the inputs given several values, in the order they vary.
    swept = JSONField(default=list)
    # Slurm's ids of the arrays it was submitted as (one, unless split at MaxArraySize).
    array_job_ids = JSONField(default=list)
    # A re-run of another sweep's failed tasks.
    rerun_of = pw.ForeignKeyField("self", null=True)
    created_at = pw.DateTimeField(default=utcnow)


class Job(BaseModel):
    kind = pw.CharField(max_length=16, default="template")  # template | sbatch
    name = pw.CharField(max_length=128, default="")
    template = pw.ForeignKeyField(Template, null=True, backref="jobs")
    template_version = pw.ForeignKeyField(TemplateVersion, null=True)
    user = pw.ForeignKeyField(User, backref="jobs")
    project = pw.ForeignKeyField(Project, null=True, backref="jobs")
    experiment = pw.ForeignKeyField(Experiment, null=True, backref="jobs")
    license = pw.CharField(max_length=64, index=True)
    slurm_account = pw.CharField(max_length=64)
    # The Unix user the job runs as ("" = the gateway's own).
    unix_user = pw.CharField(max_length=64, default="")
    # sbatch timed out: Slurm may hold this job, or (sbatch retried) more than one.
    unconfirmed_submit = pw.BooleanField(default=False)
    machine_type = pw.CharField(max_length=64, default="")
    partition = pw.CharField(max_length=64, default="")
    software_disk_gb = pw.IntegerField(default=0)
    time_limit_minutes = pw.IntegerField()
    inputs = JSONField(default=dict)
    slurm_job_id = pw.CharField(max_length=32, null=True, unique=True)
    status = pw.CharField(max_length=16, default=PENDING, index=True)
    slurm_state = pw.CharField(max_length=32, default="")
    reason = pw.TextField(default="")
    exit_code = pw.IntegerField(null=True)
    output_variables = JSONField(default=dict)
    output_files = JSONField(default=list)
    # What the gateway passed over in what the job left (links, FIFOs, too many files...).
    notes = JSONField(default=list)
    alloc_cpus = pw.IntegerField(default=0)
    alloc_gpus = pw.IntegerField(default=0)
    elapsed_seconds = pw.IntegerField(default=0)
    # Charges are whole seconds (CPU-seconds, GPU-seconds), set from accounting and
    # never incremented, so re-reading the same record cannot charge twice.
    cpu_seconds = pw.BigIntegerField(default=0)
    gpu_seconds = pw.BigIntegerField(default=0)
    submitted_at = pw.DateTimeField(default=utcnow, index=True)
    started_at = pw.DateTimeField(null=True)
    ended_at = pw.DateTimeField(null=True)
    # While pending: when Slurm expects it to start (squeue's estimate; None: no estimate).
    expected_start_at = pw.DateTimeField(null=True)
    # The user name of whoever cancelled it through the gateway ("" = nobody did): Slurm
    # records only the Unix uid scancel ran as, the job's own user.
    cancelled_by = pw.CharField(max_length=64, default="")
    # When it was cancelled through the gateway: a sweep task cancelled before it
    # started leaves no accounting record, and is ended by the poller a while after.
    cancelled_at = pw.DateTimeField(null=True)
    # True once outputs are collected and charges are final: the poller stops here.
    finalized = pw.BooleanField(default=False, index=True)
    # A task of a sweep: the sweep, and its index in the sweep's Slurm array.
    sweep = pw.ForeignKeyField(Sweep, null=True, backref="jobs", index=True)
    array_task = pw.IntegerField(null=True)
    # Read from accounting once the job has ended (gateway/efficiency.py): CPU and memory
    # used against what was asked for, plain-words warnings, and what a run again with
    # more would change. None until read.
    efficiency = JSONField(null=True)
    # Tell the person when it ends: "end", "failure" (only if it failed) or "none".
    notify = pw.CharField(max_length=8, default="none")

    class Meta:
        # A sweep's tasks in task order (its first task, a page of them) without a sort.
        indexes = ((("sweep", "array_task"), False),)


class Tag(BaseModel):
    job = pw.ForeignKeyField(Job, backref="tags", on_delete="CASCADE")
    name = pw.CharField(max_length=64, index=True)
    created_by = pw.ForeignKeyField(User)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("job", "name"), True),)


class Comment(BaseModel):
    job = pw.ForeignKeyField(Job, backref="comments", on_delete="CASCADE")
    author = pw.ForeignKeyField(User)
    body = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)


class ShareLink(BaseModel):
    """A view-only link to one job's results; only a hash of its token is stored."""

    job = pw.ForeignKeyField(Job, backref="share_links", on_delete="CASCADE")
    token_hash = pw.CharField(max_length=64, unique=True)
    created_by = pw.ForeignKeyField(User)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)


class LicenseBudget(BaseModel):
    """A licence's budget as set through the API (``set_by`` not empty; it wins over the
    config's), and since when Slurm counts the current period's usage (the gateway
    resets the account's usage when a period begins)."""

    license = pw.CharField(max_length=64, primary_key=True)
    cpu_hours = pw.FloatField(null=True)
    gpu_hours = pw.FloatField(null=True)
    period = pw.CharField(max_length=16, default="month")
    soft_percent = pw.IntegerField(default=80)
    set_by = pw.CharField(max_length=64, default="")
    set_at = pw.DateTimeField(null=True)
    usage_since = pw.DateTimeField(null=True)


class NotificationPreference(BaseModel):
    """A person's notification settings: the default for their jobs, and their webhook
    (its secret signs every delivery)."""

    user = pw.ForeignKeyField(User, primary_key=True, on_delete="CASCADE")
    on_job_end = pw.CharField(max_length=8, default="none")
    webhook_url = pw.CharField(max_length=500, default="")
    webhook_secret = pw.CharField(max_length=64, default="")


class Notification(BaseModel):
    """The outbox: one message to one person over one channel, decided in the same
    transaction as what it tells (a job's end), sent later by the notifier. ``key`` is
    unique, so deciding twice makes one row; ``sent_at`` is set once it went out."""

    key = pw.CharField(max_length=200, unique=True)
    user = pw.ForeignKeyField(User, on_delete="CASCADE")
    channel = pw.CharField(max_length=8)  # email | webhook
    subject = pw.CharField(max_length=300)
    body = pw.TextField()
    payload = JSONField(default=dict)
    created_at = pw.DateTimeField(default=utcnow)
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(default=utcnow, index=True)
    # A sender claims a row before it sends, so two senders never send the same one.
    claimed_until = pw.DateTimeField(null=True)
    sent_at = pw.DateTimeField(null=True, index=True)
    last_error = pw.TextField(default="")


class PollerLease(BaseModel):
    """One row per named lease; the gateway process holding it runs the poller."""

    name = pw.CharField(max_length=32, primary_key=True)
    holder = pw.CharField(max_length=128)
    expires_at = pw.DateTimeField()


ALL_MODELS = [
    User, Team, TeamMember, Grant, ApiToken, Environment, EnvironmentVersion, Template,
    TemplateVersion, Project, Experiment, Job, Tag, Comment, ShareLink, PollerLease,
]
