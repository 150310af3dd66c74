"""sbatch's command line, read the way sbatch reads it, for `gateway-sbatch` (pure: no I/O).

Where the wrapper and sbatch share an option, it means what it means in sbatch: ``-L``
is Slurm's licences, ``-A`` the Slurm account (mapped to the gateway licence that
charges it). Options that only shape the job in Slurm are passed on as ``#SBATCH``
lines added to the script, where sbatch reads them. Options the gateway cannot honour
are refused by name, with the reason, and so is any option this table does not know:
nothing given on the command line is dropped silently.
"""
from __future__ import annotations

import shlex
from collections import namedtuple

# How an option takes its value, as sbatch's getopt does: none, always (``--x=V``,
# ``--x V``, ``-xV``, ``-x V``), or optionally (only attached: ``--x=V``).
FLAG, VALUE, OPTIONAL = "flag", "value", "optional"


# A named tuple, not a dataclass: gateway-sbatch starts as a new process for every
# submit, and dataclasses' import (it loads inspect) would be a fifth of that start.
class Option(namedtuple("Option", "long short takes help", defaults=("", VALUE, ""))):
    """One option: its long name, short letter, how it takes a value, its help line."""

    __slots__ = ()

    @property
    def names(self) -> str:
        return f"-{self.short}/--{self.long}" if self.short else f"--{self.long}"


# Read by the wrapper itself.
WRAPPER_OPTIONS = (
    Option("gw-license", takes=VALUE, help="gateway licence to charge (or $GATEWAY_LICENSE)"),
    Option("account", "A", VALUE, "Slurm account: charges the gateway licence that uses it"),
    Option("time", "t", VALUE, "time limit (Slurm's formats), at most the site's ceiling"),
    Option("job-name", "J", VALUE, "job name"),
    Option("partition", "p", VALUE, "partition"),
    Option("chdir", "D", VALUE, "working directory of the job (default: the current one)"),
    Option("wrap", takes=VALUE, help="run this command line as the script (with /bin/sh)"),
    Option("project", takes=VALUE, help="gateway project the job belongs to (with --experiment)"),
    Option("experiment", takes=VALUE, help="gateway experiment the job belongs to"),
    Option("parsable", takes=FLAG, help="print only the Slurm job id"),
    Option("quiet", "Q", FLAG, "print nothing on success"),
    Option("wait", "W", FLAG, "wait for the job to end; exit 1 if it failed"),
    Option("help", "h", FLAG, "this help"),
    Option("usage", takes=FLAG, help="this help"),
)

# Passed on to Slurm unchanged, as #SBATCH lines.
PASSED_ON = (
    # Each task of an array is followed and charged as a gateway job of its own.
    Option("array", "a"), Option("nodes", "N"), Option("ntasks", "n"), Option("cpus-per-task", "c"),
    Option("ntasks-per-node"), Option("ntasks-per-core"), Option("ntasks-per-socket"),
    Option("ntasks-per-gpu"), Option("cpus-per-gpu"), Option("mincpus"),
    Option("mem"), Option("mem-per-cpu"), Option("mem-per-gpu"), Option("tmp"),
    Option("gpus", "G"), Option("gpus-per-node"), Option("gpus-per-socket"), Option("gpus-per-task"),
    Option("gres"), Option("gres-flags"), Option("gpu-bind"), Option("gpu-freq"),
    Option("constraint", "C"), Option("cluster-constraint"), Option("prefer"),
    Option("nodelist", "w"), Option("exclude", "x"), Option("exclusive", takes=OPTIONAL),
    Option("oversubscribe", "s", FLAG), Option("contiguous", takes=FLAG),
    Option("core-spec", "S"), Option("thread-spec"), Option("threads-per-core"),
    Option("cores-per-socket"), Option("sockets-per-node"), Option("extra-node-info", "B"),
    Option("hint"), Option("distribution", "m"), Option("mem-bind"), Option("cpu-freq"),
    Option("switches"), Option("licenses", "L"), Option("qos", "q"), Option("reservation"),
    Option("hold", "H", FLAG), Option("dependency", "d"), Option("kill-on-invalid-dep"),
    Option("begin", "b"), Option("deadline"), Option("time-min"), Option("signal"),
    Option("requeue", takes=FLAG), Option("no-requeue", takes=FLAG), Option("no-kill", "k", OPTIONAL),
    Option("mail-type"), Option("mail-user"), Option("comment"), Option("nice", takes=OPTIONAL),
    Option("priority"), Option("wckey"), Option("open-mode"), Option("propagate", takes=OPTIONAL),
    Option("acctg-freq"), Option("profile"), Option("delay-boot"), Option("reboot", takes=FLAG),
    Option("overcommit", "O", FLAG), Option("spread-job", takes=FLAG),
    Option("use-min-nodes", takes=FLAG), Option("network"), Option("mcs-label"), Option("power"),
    Option("bb"), Option("batch"), Option("container"), Option("wait-all-nodes"),
    Option("ignore-pbs", takes=FLAG),
)

_LOG = "the gateway places the job's log itself (read it with `gateway log JOB`)"
_ENV = "the gateway sets the job's environment itself"
_HERE = "it names a file on this machine, which the gateway's submit host cannot read"
# sbatch options the gateway cannot honour, and why.
REFUSED = {
    Option("output", "o"): _LOG,
    Option("error", "e"): _LOG,
    Option("input", "i"): "the gateway gives jobs no standard input",
    Option("export"): _ENV,
    Option("export-file"): _ENV,
    Option("get-user-env", takes=OPTIONAL): _ENV,
    Option("clusters", "M"): "the gateway submits to its own cluster",
    Option("uid"): "a job runs as the person who submits it",
    Option("gid"): "a job runs as the person who submits it",
    Option("test-only", takes=FLAG): "the gateway has no trial submission",
    Option("nodefile", "F"): _HERE,
    Option("bbf"): _HERE,
    # Not sbatch's: in sbatch, --license is short for --licenses (Slurm's licences).
    Option("license"): "in sbatch it is short for -L/--licenses (Slurm's licences); name the "
                       "gateway licence with --gw-license NAME (or -A SLURM_ACCOUNT)",
}

WRAP_HEADER = "#!/bin/sh\n# This script was created by sbatch --wrap.\n\n"


# sbatch's input environment variables and the options they stand for. As in sbatch,
# they are weaker than the command line and stronger than the script's #SBATCH lines.
ENVIRONMENT = {
    "SBATCH_ACCOUNT": "account", "SBATCH_PARTITION": "partition", "SBATCH_TIMELIMIT": "time",
    "SBATCH_JOB_NAME": "job-name", "SBATCH_QOS": "qos", "SBATCH_RESERVATION": "reservation",
    "SBATCH_CONSTRAINT": "constraint", "SBATCH_CLUSTER_CONSTRAINT": "cluster-constraint",
    "SBATCH_EXCLUSIVE": "exclusive", "SBATCH_GPUS": "gpus", "SBATCH_GPUS_PER_NODE": "gpus-per-node",
    "SBATCH_GPUS_PER_TASK": "gpus-per-task", "SBATCH_CPUS_PER_GPU": "cpus-per-gpu",
    "SBATCH_GRES": "gres", "SBATCH_GRES_FLAGS": "gres-flags", "SBATCH_GPU_BIND": "gpu-bind",
    "SBATCH_GPU_FREQ": "gpu-freq", "SBATCH_MEM_PER_CPU": "mem-per-cpu", "SBATCH_MEM_PER_GPU": "mem-per-gpu",
    "SBATCH_MEM_PER_NODE": "mem", "SBATCH_MEM_BIND": "mem-bind", "SBATCH_CPU_FREQ_REQ": "cpu-freq",
    "SBATCH_DISTRIBUTION": "distribution", "SBATCH_HINT": "hint", "SBATCH_NETWORK": "network",
    "SBATCH_POWER": "power", "SBATCH_PROFILE": "profile", "SBATCH_SIGNAL": "signal",
    "SBATCH_WCKEY": "wckey", "SBATCH_ACCTG_FREQ": "acctg-freq", "SBATCH_DELAY_BOOT": "delay-boot",
    "SBATCH_SWITCHES": "switches", "SBATCH_CONTAINER": "container", "SBATCH_OPEN_MODE": "open-mode",
    "SBATCH_USE_MIN_NODES": "use-min-nodes", "SBATCH_REQUEUE": "requeue", "SBATCH_NO_REQUEUE": "no-requeue",
    "SBATCH_WAIT": "wait", "SBATCH_WAIT_ALL_NODES": "wait-all-nodes",
    "SBATCH_ARRAY_INX": "array", "SBATCH_EXPORT": "export", "SBATCH_GET_USER_ENV": "get-user-env",
    "SBATCH_CLUSTERS": "clusters",
}


def environment_options(environ: dict[str, str]) -> tuple[list[str], list[str]]:
    """The options sbatch would take from ``environ`` (to go before the command line's,
    which win), and a note for each one the gateway cannot honour (ignored rather than
    refused: such a variable is often set for every job a person runs)."""
    words, notes = [], []
    for var, long in ENVIRONMENT.items():
        value = environ.get(var)
        if value is None:
            continue
        opt, kind = LONG_OPTIONS[long]
        if kind == "refused":
            notes.append(f"ignoring ${var} (sbatch's {opt.names}): {REFUSED[opt]}")
        elif opt.takes == FLAG:
            words.append(f"--{long}")
        elif opt.takes == OPTIONAL:
            words.append(f"--{long}={value}" if value else f"--{long}")
        elif value:
            words.append(f"--{long}={value}")
    return words, notes


class OptionError(ValueError):
    """A command line gateway-sbatch will not submit; the message says why, by name."""


class SbatchArgs:
    """What a gateway-sbatch command line asks for."""

    def __init__(self) -> None:
        self.wrapper: dict[str, str | bool] = {}  # long name -> value
        self.directives: list[str] = []  # e.g. "--hold", "--mem=4G", in order
        self.script: str | None = None  # a path, "-" for stdin, or None (stdin, or --wrap)

    def __repr__(self) -> str:
        return f"SbatchArgs(wrapper={self.wrapper!r}, directives={self.directives!r}, script={self.script!r})"


def _tables() -> tuple[dict[str, tuple[Option, str]], dict[str, tuple[Option, str]]]:
    """long name -> (option, kind) and short letter -> (option, kind)."""
    longs: dict[str, tuple[Option, str]] = {}
    shorts: dict[str, tuple[Option, str]] = {}
    for kind, options in (("wrapper", WRAPPER_OPTIONS), ("pass", PASSED_ON), ("refused", REFUSED)):
        for opt in options:
            longs[opt.long] = (opt, kind)
            if opt.short:
                shorts[opt.short] = (opt, kind)
    return longs, shorts


LONG_OPTIONS, SHORT_OPTIONS = _tables()


def _unknown(word: str) -> OptionError:
    hint = ""
    if word.startswith("--"):
        import difflib

        name = word[2:].partition("=")[0]
        close = [n for n in LONG_OPTIONS if n.startswith(name)] or difflib.get_close_matches(
            name, LONG_OPTIONS, n=1)
        if close:
            hint = f" (did you mean --{close[0]}?)"
    return OptionError(f"{word.partition('=')[0]}: gateway-sbatch does not know this option{hint}; "
                       f"`gateway-sbatch --help` lists what it passes on to Slurm")


def _refuse_if_refused(opt: Option, kind: str) -> None:
    if kind == "refused":
        raise OptionError(f"{opt.names} is refused: {REFUSED[opt]}")


def _take(opt: Option, kind: str, value: str | None, shown: str, out: SbatchArgs) -> None:
    if opt.takes == VALUE and not value:
        raise OptionError(f"{shown} needs a value")
    if value is not None and ("\n" in value or "\r" in value or "\0" in value):
        raise OptionError(f"{shown}: the value must be on one line")
    if kind == "wrapper":
        out.wrapper[opt.long] = True if opt.takes == FLAG else (value or "")
    else:
        out.directives.append(f"--{opt.long}" if value is None else f"--{opt.long}={value}")


def parse_args(argv: list[str]) -> SbatchArgs:
    """Read ``argv`` as sbatch does: options first, then the script; like sbatch, an
    option after the script would be an argument of the script, which the gateway
    does not pass on, so it is refused."""
    out = SbatchArgs()
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            break
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if name not in LONG_OPTIONS:
                raise _unknown(word)
            opt, kind = LONG_OPTIONS[name]
            _refuse_if_refused(opt, kind)
            if opt.takes == FLAG and eq:
                raise OptionError(f"--{name} takes no value")
            if opt.takes == VALUE and not eq:
                if i >= len(argv):
                    raise OptionError(f"--{name} needs a value")
                value, i = argv[i], i + 1
            _take(opt, kind, value if (eq or opt.takes == VALUE) else None, f"--{name}", out)
        elif word.startswith("-") and word != "-":
            j = 1
            while j < len(word):  # a cluster of short options, as getopt reads -Hv
                letter = word[j]
                if letter not in SHORT_OPTIONS:
                    raise _unknown(f"-{letter}")
                opt, kind = SHORT_OPTIONS[letter]
                _refuse_if_refused(opt, kind)
                rest = word[j + 1:]
                if opt.takes == FLAG:
                    _take(opt, kind, None, f"-{letter}", out)
                    j += 1
                    continue
                if opt.takes == OPTIONAL:
                    _take(opt, kind, rest or None, f"-{letter}", out)
                elif rest:
                    _take(opt, kind, rest, f"-{letter}", out)
                elif i < len(argv):
                    _take(opt, kind, argv[i], f"-{letter}", out)
                    i += 1
                else:
                    raise OptionError(f"-{letter} needs a value")
                break
        else:
            i -= 1
            break
    rest = argv[i:]
    if rest:
        out.script = rest[0]
        if len(rest) > 1:
            raise OptionError(f"arguments after the script are not passed on by the gateway: "
                              f"{shlex.join(rest[1:])} (options go before the script, as in sbatch)")
    if "wrap" in out.wrapper and out.script is not None:
        raise OptionError("--wrap and a script cannot both be given")
    return out


def wrap_script(command: str) -> str:
    """The script sbatch makes of ``--wrap COMMAND``."""
    return f"{WRAP_HEADER}{command}\n"


def with_directives(script: str, directives: list[str]) -> str:
    """``script`` with ``directives`` as ``#SBATCH`` lines at the end of its leading
    block of them, where sbatch still reads them and, coming last, they win over the
    script's own lines, as sbatch's command line does."""
    if not directives:
        return script
    lines = script.splitlines(keepends=True)
    at = 1 if script.startswith("#!") else 0
    while at < len(lines):  # sbatch stops reading #SBATCH lines at the first command
        stripped = lines[at].strip()
        if stripped and not stripped.startswith("#"):
            break
        at += 1
    if at and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    added = ["# given on gateway-sbatch's command line:\n"]
    added += [f"#SBATCH {shlex.quote(d)}\n" for d in directives]
    return "".join(lines[:at] + added + lines[at:])


def license_for_account(account: str, licenses: list[dict]) -> str:
    """The gateway licence (from ``GET /licenses``) that charges Slurm ``account``."""
    names = [lic["name"] for lic in licenses if lic.get("slurm_account") == account]
    if len(names) == 1:
        return names[0]
    if names:
        raise OptionError(f"-A/--account {account}: the licences {', '.join(names)} all charge this "
                          f"Slurm account; choose one with --gw-license NAME")
    yours = ", ".join(f"{lic['name']} ({lic['slurm_account']})" for lic in licenses) or "none"
    raise OptionError(f"-A/--account {account}: no gateway licence you may use charges this Slurm "
                      f"account (yours: {yours}); name the licence with --gw-license NAME")


def choose_license(args: SbatchArgs, env_license: str | None, script_account: str | None,
                   licenses_by_account) -> str:
    """The licence to charge, by sbatch's precedence: the command line (``--gw-license``,
    or ``-A`` mapped to its licence; both must agree), then ``$GATEWAY_LICENSE``, then
    the script's own ``#SBATCH --account``. ``licenses_by_account`` is called, only when
    an account has to be mapped, for the licences the user may use."""
    named = args.wrapper.get("gw-license")
    account = args.wrapper.get("account")
    if named and account:
        mapped = license_for_account(str(account), licenses_by_account())
        if mapped != named:
            raise OptionError(f"--gw-license {named} and -A/--account {account} disagree: "
                              f"Slurm account {account} is licence {mapped}'s")
        return str(named)
    if named:
        return str(named)
    if account:
        return license_for_account(str(account), licenses_by_account())
    if env_license:
        return env_license
    if script_account:
        return license_for_account(script_account, licenses_by_account())
    raise OptionError("no gateway licence to charge: give --gw-license NAME or -A SLURM_ACCOUNT, "
                      "or set $GATEWAY_LICENSE")


def help_text() -> str:
    def rows(options) -> list[str]:
        shown = {FLAG: "", VALUE: " VALUE", OPTIONAL: "[=VALUE]"}
        return [f"  {o.names + shown[o.takes]:<30} {o.help}".rstrip() for o in options]

    passed = ", ".join(o.names for o in PASSED_ON)
    refused = [line for o, why in REFUSED.items() for line in _wrapped(f"{o.names}: {why}", "  ", "    ")]
    return "\n".join([
        "usage: gateway-sbatch [OPTIONS] [SCRIPT]",
        "",
        "Submit SCRIPT (a file, or standard input) to Slurm through the gateway: the job is",
        "followed, its log kept and its CPU/GPU hours charged to a gateway licence.",
        "Options go before the script and mean what they mean in sbatch.",
        "",
        "Read by gateway-sbatch:",
        *rows(WRAPPER_OPTIONS),
        "",
        "Passed on to Slurm as #SBATCH lines:",
        *_wrapped(passed, "  ", "  "),
        "",
        "Refused:",
        *refused,
        "",
    ])


def _wrapped(text: str, first: str, indent: str, width: int = 88) -> list[str]:
    lines, line = [], first
    for word in text.split(" "):
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += word + " "
    return [*lines, line.rstrip()]
