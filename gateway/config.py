"""Gateway settings: one TOML file (``GATEWAY_CONFIG``) plus a few environment overrides.

Everything is checked when the file is loaded, so a typo in a machine type or a
licence stops the gateway at start with the key that is wrong instead of failing a
scientist's run later. What can only be checked against Slurm (partitions, GRES,
accounts) is checked by ``gateway check`` (see ``gateway.slurm_checks``).
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

MAX_TIME_LIMIT_MINUTES = 72 * 60  # the product's hard ceiling for a job's wall time
SUBMIT_VIA = ("sudo",)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SLURM_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class MachineType:
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


@dataclass(frozen=True)
class License:
    name: str
    slurm_account: str
    description: str = ""
    # Who is charged: the sponsor (a username) sees all usage and manages access;
    # members ("username" or "team:NAME") may charge it. More may be granted by API.
    sponsor: str = ""
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlurmSettings:
    # Directory holding sbatch/sacct/...; empty means "search PATH".
    bin_dir: str = ""
    # Unix user jobs run as. Empty: jobs run as the gateway's own user.
    job_user: str = ""
    # How the unprivileged gateway becomes job_user (or a person) for sbatch/scancel:
    # "sudo", with the rule in etc/sudoers.d/slurm-gateway allowing exactly those two.
    submit_via: str = "sudo"
    # Base of the per-job scratch dir (JOB_WORK_DIR) on the compute node.
    scratch_root: str = "/var/tmp/slurm-scratch"
    default_time_minutes: int = 60
    max_time_minutes: int = MAX_TIME_LIMIT_MINUTES
    command_timeout_seconds: float = 30.0
    poll_interval_seconds: float = 10.0
    # Run each person's jobs under their own Unix identity (their LDAP uid), so their
    # output files are theirs; people without one (local accounts) run as job_user.
    submit_as_user: bool = False


@dataclass(frozen=True)
class LdapSettings:
    url: str = ""  # empty: no LDAP login (local accounts only)
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


@dataclass(frozen=True)
class Config:
    data_root: Path
    jobs_root: Path
    store_root: Path
    database_url: str
    secret_key: str
    public_url: str
    slurm: SlurmSettings
    ldap: LdapSettings = field(default_factory=LdapSettings)
    machine_types: dict[str, MachineType] = field(default_factory=dict)
    licenses: dict[str, License] = field(default_factory=dict)
    max_upload_mb: int = 512
    # A job's output folder is hostile input: listing (and copying to Processed) stops
    # after this many entries, with a note on the job.
    max_output_entries: int = 10_000
    source: str = "<defaults>"

    def machine_type(self, name: str) -> MachineType | None:
        return self.machine_types.get(name)

    def license(self, name: str) -> License | None:
        return self.licenses.get(name)


def _req(table: dict, key: str, typ, where: str):
    if key not in table:
        raise ConfigError("is required", f"{where}.{key}")
    value = table[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ConfigError(f"must be a {typ.__name__}, got {value!r}", f"{where}.{key}")
    return value


def _machine_type(raw: dict, i: int) -> MachineType:
    where = f"machine_types[{i}]"
    name = _req(raw, "name", str, where)
    if not NAME_RE.match(name):
        raise ConfigError(f"{name!r} is not a valid name", f"{where}.name")
    where = f"machine_types[{name}]"
    mt = MachineType(
        name=name,
        partition=_req(raw, "partition", str, where),
        cpus=_req(raw, "cpus", int, where),
        memory_gb=_req(raw, "memory_gb", float, where),
        gpu_type=raw.get("gpu_type", "") or "",
        gpus=int(raw.get("gpus", 0)),
    )
    if not SLURM_NAME_RE.match(mt.partition):
        raise ConfigError(f"{mt.partition!r} is not a valid partition name", f"{where}.partition")
    if mt.cpus < 1:
        raise ConfigError("must be at least 1", f"{where}.cpus")
    if mt.memory_gb <= 0:
        raise ConfigError("must be positive", f"{where}.memory_gb")
    if mt.gpus < 0:
        raise ConfigError("must not be negative", f"{where}.gpus")
    if mt.gpu_type and not SLURM_NAME_RE.match(mt.gpu_type):
        raise ConfigError(f"{mt.gpu_type!r} is not a valid GRES type", f"{where}.gpu_type")
    if mt.gpu_type and not mt.gpus:
        raise ConfigError("a gpu_type needs gpus >= 1", f"{where}.gpus")
    unknown = set(raw) - {"name", "partition", "cpus", "memory_gb", "gpu_type", "gpus"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", where)
    return mt


def _license(raw: dict, i: int) -> License:
    where = f"licenses[{i}]"
    name = _req(raw, "name", str, where)
    if not NAME_RE.match(name):
        raise ConfigError(f"{name!r} is not a valid name", f"{where}.name")
    account = _req(raw, "slurm_account", str, f"licenses[{name}]")
    if not SLURM_NAME_RE.match(account):
        raise ConfigError(f"{account!r} is not a valid Slurm account", f"licenses[{name}].slurm_account")
    members = raw.get("members", [])
    if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
        raise ConfigError("must be a list of user names or 'team:NAME'", f"licenses[{name}].members")
    unknown = set(raw) - {"name", "slurm_account", "description", "sponsor", "members"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", f"licenses[{name}]")
    return License(name=name, slurm_account=account, description=raw.get("description", ""),
                   sponsor=raw.get("sponsor", ""), members=tuple(members))


def _slurm(raw: dict) -> SlurmSettings:
    known = SlurmSettings.__dataclass_fields__
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", "slurm")
    s = SlurmSettings(**raw)
    if s.submit_via in ("setpriv", "runuser"):
        raise ConfigError(f"{s.submit_via!r} needs a gateway running as root, which it no longer "
                          f"does: use \"sudo\" (etc/sudoers.d/slurm-gateway)", "slurm.submit_via")
    if s.submit_via not in SUBMIT_VIA:
        raise ConfigError(f"must be one of {list(SUBMIT_VIA)}", "slurm.submit_via")
    if not 1 <= s.max_time_minutes <= MAX_TIME_LIMIT_MINUTES:
        raise ConfigError(f"must be between 1 and {MAX_TIME_LIMIT_MINUTES}", "slurm.max_time_minutes")
    if not 1 <= s.default_time_minutes <= s.max_time_minutes:
        raise ConfigError("must be between 1 and slurm.max_time_minutes", "slurm.default_time_minutes")
    return s


def _ldap(raw: dict) -> LdapSettings:
    unknown = set(raw) - set(LdapSettings.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", "ldap")
    s = LdapSettings(**raw)
    if s.tls not in ("none", "starttls", "ldaps"):
        raise ConfigError("must be 'none', 'starttls' or 'ldaps'", "ldap.tls")
    if s.enabled:
        if not s.url.startswith(("ldap://", "ldaps://")):
            raise ConfigError("must start with ldap:// or ldaps://", "ldap.url")
        if not s.user_base:
            raise ConfigError("is required when ldap.url is set", "ldap.user_base")
        if "{username}" not in s.user_filter:
            raise ConfigError("must contain {username}", "ldap.user_filter")
        if s.bind_dn and not s.bind_password_file:
            raise ConfigError("is required with ldap.bind_dn", "ldap.bind_password_file")
        if s.ca_file and not os.path.isfile(s.ca_file):
            raise ConfigError(f"file {s.ca_file} does not exist", "ldap.ca_file")
    return s


GATEWAY_KEYS = {"data_root", "jobs_root", "store_root", "state_dir", "database_url", "secret_key",
                "secret_key_file", "public_url", "max_upload_mb", "max_output_entries"}
MIN_SECRET_LENGTH = 16


def _private(p: Path, key: str) -> None:
    """A file holding a secret must be readable by its owner only."""
    mode = p.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{p} is readable by others (mode {mode:o}): chmod 600 it", key)


def _secret(raw: dict, base: Path, source: Path | None) -> str:
    """The key that signs session cookies. There is no built-in one: a gateway
    started without a secret, or with one others can read, refuses to start."""
    if os.environ.get("GATEWAY_SECRET_KEY"):
        value, key = os.environ["GATEWAY_SECRET_KEY"], "GATEWAY_SECRET_KEY"
    elif raw.get("secret_key_file"):
        path, key = raw["secret_key_file"], "gateway.secret_key_file"
        p = (base / path) if not os.path.isabs(path) else Path(path)
        if not p.is_file():
            raise ConfigError(f"file {p} does not exist", key)
        try:
            value = p.read_text().strip()
        except OSError as e:
            raise ConfigError(f"cannot read {p}: {e.strerror}", key) from e
        if not value:
            raise ConfigError(f"file {p} is empty", key)
        _private(p, key)
    elif raw.get("secret_key"):
        value, key = str(raw["secret_key"]), "gateway.secret_key"
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
    gw = dict(raw.get("gateway", {}))
    unknown = set(gw) - GATEWAY_KEYS
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", "gateway")
    for key in ("data_root", "jobs_root", "store_root", "database_url", "public_url"):
        env = os.environ.get(f"GATEWAY_{key.upper()}")
        if env:
            gw[key] = env
    state = Path(gw.get("state_dir", "/var/lib/gateway"))

    def path(key: str, default: Path) -> Path:
        value = Path(gw.get(key) or default)
        return value if value.is_absolute() else (base / value).resolve()

    mts: dict[str, MachineType] = {}
    for i, m in enumerate(raw.get("machine_types", [])):
        mt = _machine_type(m, i)
        if mt.name in mts:
            raise ConfigError("is defined twice", f"machine_types[{mt.name}]")
        mts[mt.name] = mt
    lics: dict[str, License] = {}
    for i, lic_raw in enumerate(raw.get("licenses", [])):
        lic = _license(lic_raw, i)
        if lic.name in lics:
            raise ConfigError("is defined twice", f"licenses[{lic.name}]")
        lics[lic.name] = lic
    unknown = set(raw) - {"gateway", "slurm", "ldap", "machine_types", "licenses"}
    if unknown:
        raise ConfigError(f"unknown sections {sorted(unknown)}")
    data_root = path("data_root", state / "data")
    return Config(
        data_root=data_root,
        jobs_root=path("jobs_root", state / "jobs"),
        store_root=path("store_root", state / "store"),
        database_url=gw.get("database_url") or f"sqlite:///{state / 'gateway.db'}",
        secret_key=_secret(gw, base, Path(source) if source != "<dict>" else None),
        public_url=gw.get("public_url", "http://127.0.0.1:8080"),
        slurm=_slurm(dict(raw.get("slurm", {}))),
        ldap=_ldap(dict(raw.get("ldap", {}))),
        machine_types=mts,
        licenses=lics,
        max_upload_mb=int(gw.get("max_upload_mb", 512)),
        max_output_entries=int(gw.get("max_output_entries", 10_000)),
        source=source,
    )


def load(path: str | os.PathLike | None = None) -> Config:
    """Load the config file named by ``path`` or ``$GATEWAY_CONFIG``."""
    path = path or os.environ.get("GATEWAY_CONFIG") or "/etc/slurm-gateway/gateway.toml"
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist (set GATEWAY_CONFIG)")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: {e}") from e
    return from_dict(raw, base=p.parent.resolve(), source=str(p))
