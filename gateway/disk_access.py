"""Who may reach which folder on disk: the role model, written as POSIX ACLs.

The gateway runs as its own unprivileged user and owns every folder below
``jobs_root`` and ``data_root`` that it made. Jobs run as people's own Unix users (or
the shared job user), so what a job may open is decided by these folders' ACLs:

- ``jobs_root`` is 0711 (no listing). A job folder admits only the Unix user its job
  runs as: ``template/`` read-only, ``run/`` and ``output/`` writable, and a default
  ACL there lets the gateway read what the job writes. Nobody else gets in.
- ``data_root/projects`` is 0711. A project folder lists its experiments to the Unix
  users of its Members (r-x) and lets through (--x) those who are Members of one of
  its experiments only. An experiment folder admits (rwx) exactly the Unix users of
  its Members, Managers and Owners (reading and writing data both need Member in
  ``access``). It is sticky, so a job cannot move or replace what others or the
  gateway put there (``Processed/`` above all).
- Inside an experiment the fence has already been passed: the default ACL opens
  files and folders to whoever got in, so data written by the gateway, by one
  Member's job or another stays usable by all its Members, and revoking someone at
  the experiment folder shuts them out of everything below it.

People who run as the shared job user share its reach: it is the union of theirs.
"""
from __future__ import annotations

import logging
import os
import pwd
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import access
from .config import Config
from .job_paths import JobPaths
from .posix_acl import get_acl, same, set_acl

logger = logging.getLogger(__name__)

PRIVATE = "g::---,o::---"
TRAVERSE_ONLY = 0o711
INSIDE_EXPERIMENT = "u::rwx,g::rwx,o::rwx"


def owner_name(path: Path) -> str:
    """The user owning ``path``: the gateway's service user for the roots it was given."""
    uid = os.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _entries(perms: dict[str, str]) -> str:
    return ",".join(f"u:{name}:{p}" for name, p in sorted(perms.items()))


def _acl(owner: str, named: dict[str, str], rest: str = PRIVATE) -> str:
    named = {n: p for n, p in named.items() if p}
    return ",".join(filter(None, [owner, _entries(named), rest]))


# ------------------------------------------------------------------ job folders

def open_job_folder(paths: JobPaths, job_user: str, service_user: str) -> None:
    """Let ``job_user`` (and only them) into a new job folder made by the gateway."""
    both = {service_user: "rwx"}
    if job_user and job_user != service_user:
        set_acl(paths.base, _acl("u::rwx", {**both, job_user: "r-x"}))
        writable = {**both, job_user: "rwx"}
    else:
        set_acl(paths.base, _acl("u::rwx", both))
        writable = both
    for d in (paths.run_dir, paths.output_dir):
        # The default entry is what lets the gateway read files the job creates (it owns
        # them): a job that takes it away again only hides its own results.
        set_acl(d, _acl("u::rwx", writable), _acl("u::rwx", both))
    set_acl(paths.template_dir, "u::r-x,g::r-x,o::r-x")


# ------------------------------------------------------------------ data folders

@dataclass
class Runners:
    """Unix user -> the gateway people whose jobs run as that user."""
    by_unix: dict[str, list] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def load(cls, config: Config) -> Runners:
        from .models import User
        from .users import unix_user_for

        r = cls()
        for user in User.select():
            unix = unix_user_for(config, user)
            if unix:
                r.by_unix[unix].append(user)
        return r

    def who_may(self, action: str, obj) -> set[str]:
        return {unix for unix, users in self.by_unix.items()
                if any(access.can(u, action, obj) for u in users)}


def wanted_project(project, experiments: list, runners: Runners, service_user: str) -> str:
    perms = {u: "--x" for e in experiments for u in runners.who_may("experiment.read_data", e)}
    perms.update({u: "r-x" for u in runners.who_may("project.read_data", project)})
    perms[service_user] = "rwx"
    return _acl("u::rwx", perms)


def wanted_experiment(exp, runners: Runners, service_user: str) -> str:
    perms = {u: "rwx" for u in runners.who_may("experiment.write_data", exp)}
    perms[service_user] = "rwx"
    return _acl("u::rwx", perms)


def prepare_data_root(config: Config) -> Path:
    """``data_root/projects``, traversable by jobs but not listable."""
    root = config.data_root / "projects"
    root.mkdir(parents=True, exist_ok=True)
    for p in (config.data_root, root):
        st = os.stat(p)
        if stat.S_IMODE(st.st_mode) != TRAVERSE_ONLY and st.st_uid == os.geteuid():
            os.chmod(p, TRAVERSE_ONLY)
    return root


@dataclass
class Drift:
    path: Path
    is_acl: str
    wanted: str

    def __str__(self) -> str:
        return f"{self.path}: ACL is {self.is_acl or '(none)'}, should be {self.wanted}"


def _sync(path: Path, wanted: str, default: str | None, fix: bool, sticky: bool = False) -> Drift | None:
    try:
        now = get_acl(path)
        now_default = get_acl(path, default=True) if default is not None else None
    except FileNotFoundError:
        return None
    mode_ok = not sticky or os.stat(path).st_mode & stat.S_ISVTX
    if same(now, wanted) and mode_ok and (default is None or same(now_default, default)):
        return None
    if fix:
        set_acl(path, wanted, default)
        if sticky:
            os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) | stat.S_ISVTX)
    return Drift(path, now, wanted)


def sync_project(config: Config, project, runners: Runners | None = None, fix: bool = True) -> list[Drift]:
    """Make the project folder and its experiments' folders match the role model."""
    from .data import PROCESSED, project_dir
    from .models import Experiment

    runners = runners or Runners.load(config)
    service_user = owner_name(config.data_root)
    experiments = list(Experiment.select().where(Experiment.project == project))
    folder = project_dir(config, project.name)
    drifts = [_sync(folder, wanted_project(project, experiments, runners, service_user), None, fix)]
    # Processed/ is read by the experiment's Members' jobs, written by the gateway only.
    processed = _acl("u::rwx", {service_user: "rwx"}, "g::r-x,o::r-x")
    for exp in experiments:
        base = folder / exp.name
        drifts.append(_sync(base, wanted_experiment(exp, runners, service_user), INSIDE_EXPERIMENT,
                            fix, sticky=True))
        drifts.append(_sync(base / PROCESSED, processed, processed, fix))
    found = [d for d in drifts if d is not None]
    for d in found:
        logger.info("folder access %s: %s", "fixed" if fix else "differs", d)
    return found


def sync_all(config: Config, fix: bool = True, runners: Runners | None = None) -> list[Drift]:
    """Every project's folders (``gateway check``, and the poller now and then)."""
    from .models import Project

    prepare_data_root(config)
    runners = runners or Runners.load(config)
    return [d for p in Project.select() for d in sync_project(config, p, runners, fix)]
