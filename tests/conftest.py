"""Fixtures: a fresh gateway (config, database, data dirs) per test.

Two tiers (see README, "Tests"):

- **cluster**: ``gw``, ``gw_sqlite``, ``server``: on SQLite and PostgreSQL, wired to
  the real dev Slurm cluster, slapd and, where asked, a real HTTP server run as the
  service user. scripts/test starts those services; these fixtures check they answer
  and fail loudly when they do not, rather than skipping.
- **fast**: ``fake_gw``: SQLite and a ``FakeSlurm`` (tests/fake_slurm.py), in pytest's
  own tmp dir, as whoever runs pytest, with no service at all. Its PostgreSQL variant
  is marked ``cluster``.

Every test that needs a real service is marked ``cluster`` here, so
``pytest -m "not cluster"`` is exactly the fast tier.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Jobs run as the unprivileged job user, who must reach the test dirs: pytest's own
# tmp_path is private to root, so the tests use a world-traversable base instead.
TEST_BASE = Path(os.environ.get("GATEWAY_TEST_BASE", "/var/tmp/gateway-tests"))
PG_URL = os.environ.get("GATEWAY_TEST_PG_URL", "postgresql://gateway@127.0.0.1:5433/gateway_test")
BACKENDS = os.environ.get("GATEWAY_TEST_BACKENDS", "sqlite,postgres").split(",")
# The gateway's service user (scripts/install): `gateway serve`, `worker`, `check` run
# as it, never as root. In-process tests drive the same code as root for speed; the
# state they make is handed to this user so a server started on it can use it.
SERVICE_USER = "gateway"


def as_service(args: list[str]) -> list[str]:
    """``args`` run as the service user."""
    from gateway.wsgi_server import as_user

    return as_user(SERVICE_USER, args)


def hand_to_service(base: Path) -> None:
    """Give a test gateway's state to the service user, with the modes it insists on."""
    import pwd

    pw = pwd.getpwnam(SERVICE_USER)
    for root, dirs, files in os.walk(base):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            if os.stat(name, follow_symlinks=False).st_uid == 0:
                os.lchown(name, pw.pw_uid, pw.pw_gid)
    for sub in ("jobs", "data"):
        if (base / sub).is_dir():
            os.chmod(base / sub, 0o711)
    if (base / "store").is_dir():
        os.chmod(base / "store", 0o700)
    for db in base.glob("gateway.db*"):
        os.chmod(db, 0o600)


# Fixtures that reach a real service: a test using any of them is a cluster test.
CLUSTER_FIXTURES = {"slurm_up", "run_base", "fresh_database_url", "restore_cluster"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        where = str(item.fspath).replace(os.sep, "/")
        if ("/tests/integration/" in where or "/tests/browser/" in where
                or CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def run_base():
    base = TEST_BASE / f"run-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    base.mkdir(parents=True, exist_ok=True)
    for p in (TEST_BASE, base):
        os.chmod(p, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_up():
    """The dev cluster must answer; starting it is scripts/test's job (it is idempotent)."""
    probe = subprocess.run(["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"the dev Slurm cluster is not answering (run scripts/dev-cluster start): "
                    f"{probe.stderr.strip()}")
    return True


def _reset_postgres(url: str) -> None:
    import psycopg2

    try:
        conn = psycopg2.connect(url)
    except psycopg2.OperationalError as e:
        pytest.fail(f"PostgreSQL for tests is not answering at {url} (run scripts/dev-postgres start): {e}")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    conn.close()


LDAP_SECTION = """
[ldap]
url = "ldap://127.0.0.1:3389"
tls = "starttls"
ca_file = "/var/lib/gateway-dev/ldap/tls/ca.pem"
bind_dn = "cn=gateway-svc,ou=services,dc=gateway,dc=test"
bind_password_file = "/var/lib/gateway-dev/ldap/service-password"
user_base = "ou=people,dc=gateway,dc=test"
group_base = "ou=groups,dc=gateway,dc=test"
"""


def make_config_text(base: Path, db_url: str, extra: str = "", fast: bool = False) -> str:
    """The test gateway's config. ``fast``: no job user (jobs would run as the person
    running pytest, but FakeSlurm runs nothing) and no LDAP."""
    job_user, ldap = ("", "") if fast else ("gwjob", LDAP_SECTION)
    return f"""
[gateway]
data_root = "{base}/data"
jobs_root = "{base}/jobs"
store_root = "{base}/store"
database_url = "{db_url}"
secret_key = "test-secret-not-for-production"
public_url = "http://127.0.0.1"

[slurm]
job_user = "{job_user}"
submit_via = "helper"
scratch_root = "/var/tmp/slurm-scratch"
default_time_minutes = 10
poll_interval_seconds = 1
command_timeout_seconds = 20
submit_as_user = {str(not fast).lower()}
{extra}
{ldap}

[[machine_types]]
name = "small"
partition = "cpu"
cpus = 1
memory_gb = 0.5

[[machine_types]]
name = "double"
partition = "cpu"
cpus = 2
memory_gb = 1

[[machine_types]]
name = "gpu1"
partition = "gpu"
cpus = 1
memory_gb = 0.5
gpu_type = "testgpu"
gpus = 1

[[machine_types]]
name = "gpu2"
partition = "gpu"
cpus = 2
memory_gb = 1
gpu_type = "testgpu"
gpus = 2

[[licenses]]
name = "test-lab"
slurm_account = "test_lab"

[[licenses]]
name = "other-lab"
slurm_account = "test_other"
sponsor = "alice"
members = ["team:bio-team"]

[[licenses]]
name = "no-such-account"
slurm_account = "not_in_slurm"

# A licence with a small budget, on an account of its own (tests/*/test_budgets*.py).
[[licenses]]
name = "tiny-lab"
slurm_account = "test_budget"
sponsor = "alice"
members = ["bob"]
[licenses.budget]
cpu_hours = 1.0
period = "month"
sponsor_max_cpu_hours = 5.0
"""


_MIGRATED_SQLITE: list[Path] = []


def _copy_migrated_sqlite(target: Path) -> None:
    """An empty, fully migrated SQLite database at ``target``: migrated once per test
    session, then copied (running every migration for each test costs half its setup).
    tests/fast/test_migrations.py runs the migrations themselves."""
    from gateway.db import bind, database
    from gateway.migrate import upgrade

    if not _MIGRATED_SQLITE:
        template = Path(tempfile.mkdtemp(prefix="gateway-migrated-")) / "gateway.db"
        bind(f"sqlite:///{template}")
        upgrade()
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
        database.close()
        _MIGRATED_SQLITE.append(template)
    shutil.copyfile(_MIGRATED_SQLITE[0], target)


class Gateway:
    """One gateway under test: its app, a Flask client, an admin token, helpers."""

    def __init__(self, base: Path, db_url: str, backend: str, slurm=None):
        from gateway import config, create_app
        from gateway.context import Context
        from gateway.db import bind, database
        from gateway.migrate import upgrade
        from gateway.users import add_user, create_token

        self.base = base
        self.backend = backend
        self.config_path = base / "gateway.toml"
        self.fast = slurm is not None
        self.config_path.write_text(make_config_text(base, db_url, fast=self.fast))
        os.chmod(self.config_path, 0o600)  # it holds the session secret
        for sub in ("data", "jobs", "store"):
            (base / sub).mkdir(exist_ok=True)
        os.chmod(base, 0o755)
        self.config = config.load(self.config_path)
        if backend == "sqlite":
            _copy_migrated_sqlite(base / "gateway.db")
        bind(self.config.database_url)
        self.database = database
        upgrade()  # nothing left to do on a copy: it checks the copy is current
        if not self.fast:
            hand_to_service(base)
        self.ctx = Context.from_config(self.config)
        # In-process, what the gateway leaves for later is done before the call returns,
        # so a test sees it; a served gateway (served(), the browser tests) uses threads.
        self.ctx.run_later = lambda work: work()
        if slurm is not None:
            self.ctx.slurm = slurm
        self.slurm = self.ctx.slurm
        self.app = create_app(self.config, context=self.ctx)
        self.client = self.app.test_client()
        self.admin = add_user("admin", is_admin=True)
        self.token = create_token(self.admin, "tests")
        self.alice = add_user("alice")
        self.alice_token = create_token(self.alice, "tests")
        self.bob = add_user("bob")
        self.bob_token = create_token(self.bob, "tests")

    def headers(self, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token or self.token}"}

    def api(self, method: str, path: str, token: str | None = None, **kwargs):
        return self.client.open(f"/api/v1{path}", method=method, headers=self.headers(token), **kwargs)

    def ok(self, method: str, path: str, expect: int = 200, token: str | None = None, **kwargs):
        r = self.api(method, path, token=token, **kwargs)
        assert r.status_code == expect, (r.status_code, r.get_data(as_text=True))
        return r.json if r.is_json else r

    # --- fixtures of data -------------------------------------------------
    def environment(self, name="base", setup="export GW_ENV_READY=yes", public=False, token=None):
        self.ok("POST", "/environments", 201, token=token,
                json={"name": name, "description": "test env", "public": public})
        self.ok("POST", f"/environments/{name}/versions", 201, token=token,
                json={"version": "1", "setup": setup})

    def experiment(self, project="proj", experiment="exp", token=None):
        self.ok("POST", "/projects", 201, token=token, json={"name": project})
        self.ok("POST", f"/projects/{project}/experiments", 201, token=token, json={"name": experiment})
        return self.config.data_root / "projects" / project / experiment

    def template(self, name="tpl", script="echo hello\n", language="bash", inputs=(), outputs=(),
                 environment="base", token=None, **extra):
        body = {"name": name, "description": "a test template", "language": language,
                "script": script, "environment": environment, "inputs": list(inputs),
                "outputs": list(outputs), **extra}
        return self.ok("POST", "/templates", 201, token=token, json=body)

    def run(self, template, machine_type="small", license="test-lab", inputs=None, expect=201,
            token=None, **extra):
        body = {"project": extra.pop("project", "proj"), "experiment": extra.pop("experiment", "exp"),
                "machine_type": machine_type,
                "license": license, "software_disk_gb": 1, "inputs": inputs or {}, **extra}
        return self.ok("POST", f"/templates/{template}/runs", expect, token=token, json=body)

    def tick(self):
        from gateway.poller import tick

        return tick(self.ctx)

    def wait(self, job_id: int, timeout: float = 90, until=lambda j: j["finalized"]):
        """Run poller ticks until ``until(job)`` holds; return the job as the API shows it."""
        deadline = time.monotonic() + timeout
        if self.fast:  # FakeSlurm runs nothing: the job ends, successfully, when waited for
            sid = self.ok("GET", f"/jobs/{job_id}")["slurm_job_id"]
            if sid and not self.slurm.jobs[sid].finished:
                self.slurm.finish(sid, elapsed=1)
        while True:
            self.tick()
            job = self.ok("GET", f"/jobs/{job_id}")
            if until(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not get there in {timeout}s: {job}")
            time.sleep(0.5)

    def sacct(self, slurm_id: str, fields: str) -> dict:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", slurm_id, "-o", fields],
                             capture_output=True, text=True, check=True).stdout.strip()
        return dict(zip(fields.split(","), out.splitlines()[-1].split("|"), strict=True))

    def close(self):
        if self.ctx.slurm is self.slurm and getattr(self.slurm, "helpers", None):
            self.slurm.helpers.close()
        if not self.database.is_closed():
            self.database.close()


@pytest.fixture
def fresh_database_url(run_base):
    """A function giving an empty database's URL for a backend ("sqlite" or "postgres")."""
    def make(backend: str) -> str:
        if backend == "postgres":
            _reset_postgres(PG_URL)
            return PG_URL
        return f"sqlite:///{run_base}/db-{uuid.uuid4().hex[:8]}.db"
    return make


@pytest.fixture(params=BACKENDS)
def gw(request, run_base, slurm_up):
    backend = request.param
    base = run_base / f"{request.node.name[:40].replace('[', '_').replace(']', '')}-{uuid.uuid4().hex[:6]}"
    base.mkdir()
    if backend == "postgres":
        _reset_postgres(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{base}/gateway.db"
    g = Gateway(base, url, backend)
    yield g
    g.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.cluster)])
def fake_gw(request, tmp_path):
    """A gateway on a FakeSlurm: the fast tier's ``gw`` (same helpers)."""
    from tests.fake_slurm import FakeSlurm

    base = tmp_path / "gw"
    base.mkdir()
    if request.param == "postgres":
        _reset_postgres(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{base}/gateway.db"
    g = Gateway(base, url, request.param, slurm=FakeSlurm())
    yield g
    g.close()


@pytest.fixture
def fake_gw_ready(fake_gw):
    """``fake_gw`` with a public-enough world to run in: environment "base", experiment
    proj/exp, and a template "tpl" with one output, OUT_X."""
    fake_gw.environment()
    fake_gw.experiment()
    fake_gw.template(name="tpl", outputs=[{"name": "OUT_X", "type": "string"}])
    return fake_gw


def sign_in_from_directory(gw: Gateway, *names: str) -> None:
    """Directory people log in once (as on their first visit), replacing the local
    accounts of the same names the fixture made."""
    from gateway.models import User

    User.delete().where(User.username.in_(names)).execute()
    for name in names:
        r = gw.client.post("/api/v1/auth/token", json={"username": name, "password": f"{name}-pw"})
        assert r.status_code == 201, r.json


@pytest.fixture
def gw_sqlite(run_base, slurm_up):
    """For the slow fault and time-limit tests: once, on SQLite."""
    base = run_base / f"sq-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    g = Gateway(base, f"sqlite:///{base}/gateway.db", "sqlite")
    yield g
    g.close()


@contextlib.contextmanager
def served(gw: Gateway, poller: bool = False):
    """``gw`` served over HTTP by `gateway serve` (gunicorn) as the service user; its URL."""
    from gateway.wsgi_server import serve_in_background

    hand_to_service(gw.base)
    with open(gw.base / "serve.log", "w") as log, serve_in_background(
            env={**os.environ, "GATEWAY_CONFIG": str(gw.config_path)}, log=log, poller=poller,
            run_as=SERVICE_USER) as url:
        yield url


@pytest.fixture
def server(gw):
    """The same gateway served over HTTP, for CLI tests."""
    with served(gw) as url:
        yield url
