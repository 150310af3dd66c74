# shellcheck shell=bash
# common.sh: the preamble every script under scripts/ shares. A script sets PROG (the
# prefix of its messages) and sources this first:
#
#   PROG=dev-ldap
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# It brings strict mode, the repository's paths, messages and failure reports that
# name the step that failed (and show its log), the root check, the start/stop lock,
# Debian package installs, and the process helpers the dev services' scripts use to
# find, wait for and stop their daemons.

set -Eeuo pipefail

: "${PROG:?set PROG (the prefix of our messages) before sourcing common.sh}"
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly REPO_DIR
readonly SCRIPTS_LIB="$REPO_DIR/scripts/lib"
readonly VENV="$REPO_DIR/.venv"               # made by scripts/install
readonly STATE_DIR=/var/lib/gateway-dev       # the dev services' state, logs and locks

# close_inherited_fds: the daemons we start must not keep what our caller left open,
# such as the lock of `flock FILE scripts/dev-ldap start`, which would then stay
# taken as long as the daemon runs. (Bash reads this script through fd 255.)
close_inherited_fds() {
    local path fd
    for path in /proc/$$/fd/*; do
        fd=${path##*/}
        if ((fd > 2 && fd < 255)); then exec {fd}>&-; fi
    done
}
close_inherited_fds

STEP=""           # what we are doing, for error messages
STEP_LOG=""       # the log worth showing if that fails
SHOW_LOG_LINES=20 # how much of it

# ---------------------------------------------------------------- messages

msg() { echo "$PROG: $*"; }
warn() { echo "$PROG: warning: $*" >&2; }

# step WHAT [LOG]: what we do from now on, and the log to show if it fails.
step() { STEP="$1"; STEP_LOG="${2-}"; }

show_log() {
    local log="${1:-}"
    if [[ -n "$log" && -s "$log" ]]; then
        echo "$PROG: ---- last $SHOW_LOG_LINES lines of $log ----" >&2
        tail -n "$SHOW_LOG_LINES" "$log" >&2 || true
        echo "$PROG: ----" >&2
    fi
}

# failed MESSAGE: say that (and the step we were at) failed, and show the step's log.
failed() {
    trap - ERR
    local where=""
    [[ -z $STEP ]] || where=" at step '$STEP'"
    echo "$PROG: FAILED$where: $*" >&2
    show_log "$STEP_LOG"
}

# fail MESSAGE: name the failed step, show its log, exit non-zero.
fail() {
    failed "$@"
    exit 1
}

on_err() {
    local rc=$1 line=$2 cmd=$3 file=$4
    # Inside $(...) let the failure propagate; report once, from the main shell.
    [[ $BASHPID == "$$" ]] || return "$rc"
    if [[ $file == "$0" ]]; then file=""; else file=" of ${file#"$REPO_DIR"/}"; fi
    failed "command '$cmd' exited $rc (line $line$file)"
    exit "$rc"
}
trap 'on_err $? $LINENO "$BASH_COMMAND" "${BASH_SOURCE[0]}"' ERR

need_root() { [[ $EUID -eq 0 ]] || { echo "$PROG: must run as root" >&2; exit 1; }; }

# take_lock SECONDS: one start/stop of this service at a time (tests may call us
# concurrently; two starts racing would launch a daemon twice). The lock is fd 9:
# daemons are started with 9>&- so they do not inherit (and hold) it.
take_lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/$PROG.lock"
    flock -w "$1" 9 || { echo "$PROG: another $PROG run holds $STATE_DIR/$PROG.lock" >&2; exit 1; }
}

# slurm_version: e.g. 24.11.5, from slurmd -V, which (unlike sinfo -V and sbatch
# --version in Slurm 24.11) needs no slurm.conf; nothing when Slurm is not installed.
slurm_version() { /usr/sbin/slurmd -V 2>/dev/null | awk '{print $2}' || true; }

# as_user USER CMD...: run CMD as USER, with USER's groups.
as_user() { local user=$1; shift; setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"; }

# ---------------------------------------------------------------- Debian packages

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# apt_get_install PKG...: non-interactive (debconf defaults), existing config files kept.
apt_get_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# apt_install PKG...: install those of PKG that are missing. The package lists are
# refreshed first when they lack one of them (a fresh machine), and once more when
# the install fails (stale lists). A policy-rc.d keeps the packages' scripts from
# starting daemons with stock configs: our scripts start their own (and without
# systemd such a start could fail apt).
apt_install() {
    local missing=() p
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        msg "all packages present ($*)"
        return 0
    fi
    step "apt-get install ${missing[*]}"
    if (($(apt-cache policy "${missing[@]}" 2>/dev/null | grep -c 'Candidate: [0-9]') < ${#missing[@]})); then
        msg "no package lists for ${missing[*]}: running apt-get update"
        apt-get update -q >/dev/null || fail "apt-get update failed"
    fi
    msg "installing ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d created=0 rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created=1
    fi
    apt_get_install "${missing[@]}" || {
        msg "apt-get install failed: running apt-get update and trying again"
        apt-get update -q >/dev/null && apt_get_install "${missing[@]}"
    } || rc=$?
    ((created)) && rm -f "$policy"
    ((rc == 0)) || fail "apt-get install failed (rc=$rc)"
    msg "installed ${missing[*]}"
}

# ---------------------------------------------------------------- processes
# A process counts as a service's daemon when /proc/PID/exe is the service's binary
# (and, for a daemon that may run more than once, its arguments name our instance):
# a pid file can outlive its daemon (kill -9, a machine restored elsewhere) and its
# pid may now belong to an unrelated process.

# pid_in_file FILE: the pid on the file's first line, or nothing.
pid_in_file() {
    [[ -r $1 ]] || return 0
    head -n1 -- "$1" 2>/dev/null | tr -dc '0-9' || true
}

# runs_binary PID BIN: the process runs BIN (a resolved path), also when BIN was
# replaced since (a package upgrade).
runs_binary() {
    local exe
    exe="$(readlink "/proc/$1/exe" 2>/dev/null || true)"
    [[ $exe == "$2" || $exe == "$2 (deleted)" ]]
}

# has_arg PID ARG: ARG is exactly one of the process's arguments.
has_arg() { tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline" | grep -qxF -- "$2"; }

# daemon_pids BIN PIDFILE [ARG]: the daemon's pid from PIDFILE if that is still the
# daemon, else the pids of every process running BIN (with ARG), one a line.
daemon_pids() {
    local real pid
    real="$(readlink -f "$1" 2>/dev/null || echo "$1")"
    pid="$(pid_in_file "$2")"
    if [[ -n $pid ]] && runs_binary "$pid" "$real" && { [[ -z ${3-} ]] || has_arg "$pid" "$3"; }; then
        echo "$pid"
        return 0
    fi
    for pid in $({ find /proc/[0-9]*/exe -maxdepth 0 \( -lname "$real" -o -lname "$real (deleted)" \) \
        2>/dev/null || true; } | cut -d/ -f3); do
        [[ -z ${3-} ]] || has_arg "$pid" "$3" || continue
        echo "$pid"
    done
}

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
    local stat=""
    # 2>/dev/null first: the process may be gone before the file is opened.
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    [[ ${stat##*) } != Z* ]]
}

# wait_while SECONDS CMD...: poll CMD every 0.1 s while it succeeds; fails if it
# still does after SECONDS.
wait_while() {
    local tenths=$(($1 * 10)) i
    shift
    for ((i = 0; i < tenths; i++)); do
        "$@" || return 0
        sleep 0.1
    done
    ! "$@"
}

# poll SECONDS INTERVAL CMD...: run CMD every INTERVAL seconds until it answers
# anything but 1 ("not yet"), and return that answer; 1 after SECONDS.
poll() {
    local timeout=$1 interval=$2 start=$SECONDS rc
    shift 2
    while ((SECONDS - start < timeout)); do
        rc=0
        "$@" || rc=$?
        ((rc == 1)) || return "$rc"
        sleep "$interval"
    done
    return 1
}

# fix_owner PATH USER [all]: give PATH (recursively) to USER and USER's group when
# PATH (with "all": anything in it) belongs to someone else, as a folder from
# another machine or an earlier run with other uids does.
fix_owner() {
    local path=$1 user=$2 group
    [[ -e $path ]] || return 0
    group="$(id -gn "$user")"
    if [[ ${3-} == all ]]; then
        [[ -n $(find "$path" \( ! -user "$user" -o ! -group "$group" \) -print -quit) ]] || return 0
    else
        [[ "$(stat -c %U "$path")" != "$user" ]] || return 0
    fi
    msg "fixing ownership of $path (-> $user)"
    chown -R "$user:$group" "$path"
}
