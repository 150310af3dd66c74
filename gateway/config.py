"""Gateway settings: one TOML file (``GATEWAY_CONFIG``) plus a few environment overrides.

Each table of the file is a dataclass below, and one checker reads them all from their
fields: a key no field has, a value of the wrong type (``"10"`` for a number, ``1`` for
true) or a missing required value stops the gateway at start with the file, the key
and what was expected, instead of being ignored or failing a scientist's run later.
Each dataclass's ``check`` adds the rules a type cannot say (ranges, name patterns).
What can only be checked against Slurm (partitions, GRES, accounts) is checked by
``gateway check`` (see ``gateway.slurm_checks``).
"""
from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .validation import NAME_RE

MAX_TIME_LIMIT_MINUTES = 72 * 60  # the product's hard ceiling for a job's wall time
SUBMIT_VIA = ("helper", "sudo")
# Where scripts/install puts gateway/slurm/submit_helper.py, root-owned, for sudo.
HELPER_PATH = "/usr/local/libexec/slurm-gateway/submit-helper"
SLURM_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
MIN_SECRET_LENGTH = 16
DEFAULT_PATH = "/etc/slurm-gateway/gateway.toml"
# [gateway] keys an environment variable GATEWAY_<KEY> may replace (containers, tests).
ENV_OVERRIDES = ("data_root", "jobs_root", "store_root", "database_url", "public_url", "callback_url")


@dataclass(frozen=True)
class GatewaySettings:
    """[gateway]: where the gateway keeps its state and how it is reached."""
    # Parent of the defaults below; each may be set on its own.
    state_dir: str = "/var/lib/gateway"
    data_root: str = ""  # empty: <state_dir>/data
    jobs_root: str = ""  # empty: <state_dir>/jobs
    store_root: str = ""  # empty: <state_dir>/store
    database_url: str = ""  # empty: SQLite at <state_dir>/gateway.db
    # The session secret: a file only the gateway can read, or inline in a config file
    # only the gateway can read. There is no default (see ``_secret``).
    secret_key_file: str = ""
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:8080"
    # Where compute nodes reach the gateway: a job calls back here when it starts and
    # ends, so its status follows at once instead of at the next poll. Empty: no
    # callbacks (the poller alone follows jobs).
    callback_url: str = ""
    max_upload_mb: int = 512
    # A job's output folder is hostile input: listing (and copying to Processed) stops
    # after this many entries, with a note on the job.
    max_output_entries: int = 10_000

    def check(self) -> None:
        if self.secret_key and self.secret_key_file:
            raise ConfigError("set secret_key_file or secret_key, not both", "secret_key")
        if not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("expected a URL starting with http:// or https://", "public_url")
        if self.callback_url:
            _check_callback_url(self.callback_url)
        for key in ("max_upload_mb", "max_output_entries"):
            if getattr(self, key) < 1:
                raise ConfigError("expected a whole number of at least 1", key)


@dataclass(frozen=True)
class MachineType:
    """One [[machine_types]] entry: what people choose, mapped to Slurm resources."""
    name: str
    partition: str
    cpus: int
    memory_gb: float
    gpu_type: str = ""
    gpus: int = 0

    @property
    def memory_mb(self) -> int:
        return int(self.memory_gb * 1024)

    @property
    def gres(self) -> str | None:
        if not self.gpus:
            return None
        return f"gpu:{self.gpu_type}:{self.gpus}" if self.gpu_type else f"gpu:{self.gpus}"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "cpus": self.cpus,
            "memory_gb": self.memory_gb,
            "gpu_type": self.gpu_type or None,
            "gpus": self.gpus,
            "partition": self.partition,
        }

    def check(self) -> None:
        _check_name(self.name, "name")
        if not SLURM_NAME_RE.match(self.partition):
            raise ConfigError(f"{self.partition!r} is not a valid partition name", "partition")
        if self.cpus < 1:
            raise ConfigError("must be at least 1", "cpus")
        if self.memory_gb <= 0:
            raise ConfigError("must be positive", "memory_gb")
        if self.gpus < 0:
            raise ConfigError("must not be negative", "gpus")
        if self.gpu_type and not SLURM_NAME_RE.match(self.gpu_type):
            raise ConfigError(f"{self.gpu_type!r} is not a valid GRES type", "gpu_type")
        if self.gpu_type and not self.gpus:
            raise ConfigError("a gpu_type needs gpus >= 1", "gpus")


BUDGET_PERIODS = ("month", "quarter", "year", "none")


@dataclass(frozen=True)
class Budget:
    """[licenses.budget]: what a licence may use per period, held by Slurm itself (the
    account's GrpTRESMins). A limit left out is no limit. The sponsor may change the
    budget through the API and portal, up to the sponsor_max_ values when they are set;
    admins may set any."""
    cpu_hours: float | None = None
    gpu_hours: float | None = None
    # "month", "quarter", "year" (calendar, UTC) or "none" (never starts again).
    period: str = "month"
    # Sponsors are told when usage passes this share of a limit.
    soft_percent: int = 80
    sponsor_max_cpu_hours: float | None = None
    sponsor_max_gpu_hours: float | None = None

    def check(self) -> None:
        for key in ("cpu_hours", "gpu_hours", "sponsor_max_cpu_hours", "sponsor_max_gpu_hours"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError("must not be negative", key)
        if self.period not in BUDGET_PERIODS:
            raise ConfigError(f"expected one of {list(BUDGET_PERIODS)}, got {self.period!r}", "period")
        if not 1 <= self.soft_percent <= 100:
            raise ConfigError("must be between 1 and 100", "soft_percent")


@dataclass(frozen=True)
class License:
    """One [[licenses]] entry: a Slurm account people charge their jobs to."""
    name: str
    slurm_account: str
    description: str = ""
    # Who is charged: the sponsor (a username) sees all usage and manages access;
    # members ("username" or "team:NAME") may charge it. More may be granted by API.
    sponsor: str = ""
    members: tuple[str, ...] = ()
    # No [licenses.budget] table: no limits (usage is still recorded).
    budget: Budget = field(default_factory=Budget)

    def check(self) -> None:
        _check_name(self.name, "name")
        if not SLURM_NAME_RE.match(self.slurm_account):
            raise ConfigError(f"{self.slurm_account!r} is not a valid Slurm account", "slurm_account")
        if not all(self.members):
            raise ConfigError("expected a list of user names or 'team:NAME', got an empty one", "members")


@dataclass(frozen=True)
class SlurmSettings:
    """[slurm]: how the gateway reaches Slurm and the limits it puts on jobs."""
    # Directory holding sbatch/sacct/...; empty means "search PATH".
    bin_dir: str = ""
    # Unix user jobs run as. Empty: jobs run as the gateway's own user.
    job_user: str = ""
    # How the unprivileged gateway becomes job_user (or a person) for sbatch/scancel,
    # with the rules in etc/sudoers.d/slurm-gateway: "helper" starts submit_helper
    # through sudo once per person and keeps it (a submit then costs no sudo); "sudo"
    # runs sudo for every call.
    submit_via: str = "helper"
    submit_helper: str = HELPER_PATH
    # Base of the per-job scratch dir (JOB_WORK_DIR) on the compute node.
    scratch_root: str = "/var/tmp/slurm-scratch"
    default_time_minutes: int = 60
    max_time_minutes: int = MAX_TIME_LIMIT_MINUTES
    command_timeout_seconds: float = 30.0
    poll_interval_seconds: float = 10.0
    # Run each person's jobs under their own Unix identity (their LDAP uid), so their
    # output files are theirs; people without one (local accounts) run as job_user.
    submit_as_user: bool = False
    # Sweeps (one template over many inputs, as Slurm job arrays): at most this many
    # tasks in one sweep; Slurm runs at most the throttle at once unless the person
    # gives another; an array above max_array_size tasks (Slurm's MaxArraySize, whose
    # default is 1001) is split into several.
    max_sweep_tasks: int = 10_000
    default_sweep_throttle: int = 50
    max_array_size: int = 1001

    def check(self) -> None:
        if self.submit_via in ("setpriv", "runuser"):
            raise ConfigError(f"{self.submit_via!r} needs a gateway running as root, which it no "
                              f"longer does: use \"sudo\" (etc/sudoers.d/slurm-gateway)", "submit_via")
        if self.submit_via not in SUBMIT_VIA:
            raise ConfigError(f"expected one of {list(SUBMIT_VIA)}, got {self.submit_via!r}", "submit_via")
        if not 1 <= self.max_time_minutes <= MAX_TIME_LIMIT_MINUTES:
            raise ConfigError(f"must be between 1 and {MAX_TIME_LIMIT_MINUTES}", "max_time_minutes")
        if not 1 <= self.default_time_minutes <= self.max_time_minutes:
            raise ConfigError("must be between 1 and slurm.max_time_minutes", "default_time_minutes")
        for key in ("command_timeout_seconds", "poll_interval_seconds", "max_sweep_tasks",
                    "default_sweep_throttle", "max_array_size"):
            if getattr(self, key) <= 0:
                raise ConfigError("must be positive", key)


@dataclass(frozen=True)
class LdapSettings:
    """[ldap]: login against a directory; an empty url means local accounts only."""
    url: str = ""
    # "none", "starttls" (on an ldap:// URL) or "ldaps" (implied by an ldaps:// URL).
    tls: str = "none"
    ca_file: str = ""
    bind_dn: str = ""
    bind_password_file: str = ""
    user_base: str = ""
    # {username} is replaced by the LDAP-escaped name typed at login.
    user_filter: str = "(&(objectClass=posixAccount)(uid={username}))"
    username_attribute: str = "uid"
    group_base: str = ""
    group_filter: str = "(&(objectClass=posixGroup)(memberUid={username}))"
    group_name_attribute: str = "cn"
    timeout_seconds: float = 5.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def check(self) -> None:
        if self.tls not in ("none", "starttls", "ldaps"):
            raise ConfigError(f"expected 'none', 'starttls' or 'ldaps', got {self.tls!r}", "tls")
        if not self.enabled:
            return
        if not self.url.startswith(("ldap://", "ldaps://")):
            raise ConfigError("must start with ldap:// or ldaps://", "url")
        if not self.user_base:
            raise ConfigError("is required when ldap.url is set", "user_base")
        if "{username}" not in self.user_filter:
            raise ConfigError("must contain {username}", "user_filter")
        if self.bind_dn and not self.bind_password_file:
            raise ConfigError("is required with ldap.bind_dn", "bind_password_file")
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise ConfigError(f"file {self.ca_file} does not exist", "ca_file")


@dataclass(frozen=True)
class NotificationSettings:
    """[notifications]: telling people a job ended, and sponsors a budget is nearly or
    all used. E-mail goes through smtp_host (empty: no e-mail); webhooks are signed
    JSON POSTs to each person's own URL."""
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password_file: str = ""
    from_address: str = "slurm-gateway@localhost"
    # A webhook URL is a person's to choose: the gateway refuses ones that resolve to
    # its own host (loopback) or link-local addresses (cloud metadata) unless allowed.
    webhook_allow_loopback: bool = False
    timeout_seconds: float = 10.0
    # A failed send is retried with back-off (10 s, 20 s, 40 s, ... at most an hour).
    max_attempts: int = 8

    def check(self) -> None:
        if not 1 <= self.smtp_port <= 65535:
            raise ConfigError("must be a port number", "smtp_port")
        if self.smtp_user and not self.smtp_password_file:
            raise ConfigError("is required with smtp_user", "smtp_password_file")
        if "@" not in self.from_address:
            raise ConfigError("must be an e-mail address", "from_address")
        if self.timeout_seconds <= 0 or self.max_attempts < 1:
            raise ConfigError("must be positive", "timeout_seconds" if self.timeout_seconds <= 0
                              else "max_attempts")


@dataclass(frozen=True)
class ConfigFile:
    """The file as written: its tables and arrays of tables, checked, nothing resolved."""
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    ldap: LdapSettings = field(default_factory=LdapSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    machine_types: tuple[MachineType, ...] = ()
    licenses: tuple[License, ...] = ()

    def check(self) -> None:
        for section in ("machine_types", "licenses"):
            seen: set[str] = set()
            for entry in getattr(self, section):
                if entry.name in seen:
                    raise ConfigError("is defined twice", f"{section}[{entry.name}]")
                seen.add(entry.name)


@dataclass(frozen=True)
class Config:
    """The settings the gateway runs with: the file's, with paths and secret resolved."""
    data_root: Path
    jobs_root: Path
    store_root: Path
    database_url: str
    secret_key: str
    public_url: str
    slurm: SlurmSettings
    callback_url: str = ""  # no trailing "/"; empty: jobs do not call back
    ldap: LdapSettings = field(default_factory=LdapSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    machine_types: dict[str, MachineType] = field(default_factory=dict)
    licenses: dict[str, License] = field(default_factory=dict)
    max_upload_mb: int = 512
    max_output_entries: int = 10_000
    source: str = "<defaults>"

    def machine_type(self, name: str) -> MachineType | None:
        return self.machine_types.get(name)

    def license(self, name: str) -> License | None:
        return self.licenses.get(name)


def _check_callback_url(url: str) -> None:
    """A base URL a job script can call: http(s), a host, no query, nothing to quote."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.query
            or parts.fragment or any(c.isspace() or c in "'\"\\`$" for c in url)):
        raise ConfigError("expected a base URL such as http://gateway.cluster:8080 (http or https, "
                          "no query, no spaces or quotes)", "callback_url")


def _check_name(value: str, key: str) -> None:
    if not NAME_RE.match(value):
        raise ConfigError(f"{value!r} is not a valid name (letters, digits, '.', '_', '-')", key)


# --- the one checker: a TOML value against a dataclass field's type -----------------

def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _expected(typ: Any) -> str:
    """What a value of type ``typ`` looks like in TOML, for messages."""
    if _optional(typ) is not None:
        return _expected(_optional(typ))
    if typing.get_origin(typ) is tuple:
        item = typing.get_args(typ)[0]
        return "a list of tables" if is_dataclass(item) else f"a list of {_expected(item).split()[1]}s"
    if is_dataclass(typ):
        return "a table"
    return {bool: "a boolean (true or false)", int: "an integer", float: "a number",
            str: "a string"}[typ]


def _got(value: Any) -> str:
    kind = ("a boolean" if isinstance(value, bool) else "an integer" if isinstance(value, int)
            else "a number" if isinstance(value, float) else "a string" if isinstance(value, str)
            else "a list" if isinstance(value, list) else "a table" if isinstance(value, dict)
            else "a date/time")
    return kind if isinstance(value, (list, dict)) else f"{kind} ({value!r})"


def _value(typ: Any, value: Any, key: str) -> Any:
    """``value`` as a ``typ``, or ConfigError. TOML integers pass for numbers (``30`` for
    ``30.0``); nothing else is converted: ``"10"`` is not a number, ``1`` not a boolean.
    TOML has no null: an optional key is left out, so a value present is of the type."""
    if _optional(typ) is not None:
        return _value(_optional(typ), value, key)
    if typing.get_origin(typ) is tuple:
        item = typing.get_args(typ)[0]
        if not isinstance(value, list):
            raise ConfigError(f"expected {_expected(typ)}, got {_got(value)}", key)
        return tuple(_value(item, v, _entry_key(key, i, v)) for i, v in enumerate(value))
    if is_dataclass(typ):
        return _parse(typ, value, key)
    ok = (isinstance(value, bool) if typ is bool
          else isinstance(value, (int, float)) and not isinstance(value, bool) if typ is float
          else isinstance(value, typ) and not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"expected {_expected(typ)}, got {_got(value)}", key)
    return float(value) if typ is float else value


def _optional(typ: Any) -> Any:
    """``X`` for a type ``X | None``, else None."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(typ)) == 2:
            return args[0]
    return None


def _entry_key(key: str, i: int, value: Any) -> str:
    """``machine_types[cpu-small]`` for a named entry, ``machine_types[2]`` otherwise."""
    name = value.get("name") if isinstance(value, dict) else None
    return f"{key}[{name}]" if isinstance(name, str) and name else f"{key}[{i}]"


def _unknown(where: str, key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = (f"did you mean {_join(where, close[0])}?" if close
            else f"expected one of: {', '.join(known)}")
    return ConfigError(f"unknown {'key' if where else 'section'}; {hint}", _join(where, key))


def _parse(cls: type, raw: Any, where: str) -> Any:
    """The table ``raw`` as a ``cls``: every key one of its fields, every value of that
    field's type, every field without a default present; then ``cls.check``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a table, got {_got(raw)}", where or None)
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    for key in raw:
        if key not in known:
            raise _unknown(where, key, known)
    values = {}
    for f in fields(cls):
        if f.name in raw:
            values[f.name] = _value(hints[f.name], raw[f.name], _join(where, f.name))
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"is required: expected {_expected(hints[f.name])}", _join(where, f.name))
    obj = cls(**values)
    try:
        obj.check()
    except ConfigError as e:
        e.key = _join(where, e.key) if e.key else where or None
        raise
    return obj


# --- from the file to the running settings ------------------------------------------

def _private(p: Path, key: str) -> None:
    """A file holding a secret must be readable by its owner only."""
    mode = p.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{p} is readable by others (mode {mode:o}): chmod 600 it", key)


def _secret(gw: GatewaySettings, base: Path, source: Path | None) -> str:
    """The key that signs session cookies. There is no built-in one: a gateway
    started without a secret, or with one others can read, refuses to start."""
    if os.environ.get("GATEWAY_SECRET_KEY"):
        value, key = os.environ["GATEWAY_SECRET_KEY"], "GATEWAY_SECRET_KEY"
    elif gw.secret_key_file:
        key = "gateway.secret_key_file"
        p = Path(gw.secret_key_file)
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise ConfigError(f"file {p} does not exist", key)
        try:
            value = p.read_text().strip()
        except OSError as e:
            raise ConfigError(f"cannot read {p}: {e.strerror}", key) from e
        if not value:
            raise ConfigError(f"file {p} is empty", key)
        _private(p, key)
    elif gw.secret_key:
        value, key = gw.secret_key, "gateway.secret_key"
        if source is not None:
            _private(source, key)  # the secret is in the config file itself
    else:
        raise ConfigError("no session secret: set secret_key_file (a file only the gateway "
                          "can read) or $GATEWAY_SECRET_KEY", "gateway.secret_key_file")
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"the secret is shorter than {MIN_SECRET_LENGTH} characters", key)
    return value


def from_dict(raw: dict, base: Path = Path("."), source: str = "<dict>") -> Config:
    """Build and validate a Config from parsed TOML; environment overrides win."""
    file = _parse(ConfigFile, raw, "")
    gw = replace(file.gateway, **{key: os.environ[f"GATEWAY_{key.upper()}"] for key in ENV_OVERRIDES
                                  if os.environ.get(f"GATEWAY_{key.upper()}")})
    if gw.callback_url and os.environ.get("GATEWAY_CALLBACK_URL"):
        try:
            _check_callback_url(gw.callback_url)
        except ConfigError as e:
            e.key = "GATEWAY_CALLBACK_URL"
            raise
    state = Path(gw.state_dir)

    def path(value: str, default: Path) -> Path:
        p = Path(value or default)
        return p if p.is_absolute() else (base / p).resolve()

    return Config(
        data_root=path(gw.data_root, state / "data"),
        jobs_root=path(gw.jobs_root, state / "jobs"),
        store_root=path(gw.store_root, state / "store"),
        database_url=gw.database_url or f"sqlite:///{state / 'gateway.db'}",
        secret_key=_secret(gw, base, Path(source) if source != "<dict>" else None),
        public_url=gw.public_url,
        callback_url=gw.callback_url.rstrip("/"),
        slurm=file.slurm,
        ldap=file.ldap,
        notifications=file.notifications,
        machine_types={mt.name: mt for mt in file.machine_types},
        licenses={lic.name: lic for lic in file.licenses},
        max_upload_mb=gw.max_upload_mb,
        max_output_entries=gw.max_output_entries,
        source=source,
    )


def load(path: str | os.PathLike | None = None) -> Config:
    """Load the config file named by ``path`` or ``$GATEWAY_CONFIG``; every error names it."""
    p = Path(path or os.environ.get("GATEWAY_CONFIG") or DEFAULT_PATH)
    if not p.is_file():
        raise ConfigError("the config file does not exist (set GATEWAY_CONFIG)", source=str(p))
    try:
        raw = tomllib.loads(p.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read the config file: {e.strerror}", source=str(p)) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}", source=str(p)) from e
    try:
        return from_dict(raw, base=p.parent.resolve(), source=str(p))
    except ConfigError as e:
        e.source = str(p)
        raise
