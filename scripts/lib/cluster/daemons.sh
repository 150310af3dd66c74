# shellcheck shell=bash
# The dev cluster's daemons (sourced by scripts/dev-cluster): munge, MariaDB, slurmdbd,
# slurmctld, slurmd. How to find each one, check it answers, start it (with what it
# needs first) and stop it; then the node's readiness in sinfo.

# first_cmd NAME...: print the first command that exists (MariaDB 11 drops
# some mysql* names, older installs lack some mariadb* names).
first_cmd() {
    local c
    for c in "$@"; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
        if [[ -x /usr/sbin/$c ]]; then echo "/usr/sbin/$c"; return 0; fi
    done
    return 1
}

mysql_client() { first_cmd mariadb mysql; }
mysql_admin() { first_cmd mariadb-admin mysqladmin; }

# ---------------------------------------------------------------- daemons
# Each service: binary, pid file, log, health check.

svc_bin() {
    case "$1" in
        munge) echo /usr/sbin/munged ;;
        mariadb) first_cmd mariadbd mysqld || echo /usr/sbin/mariadbd ;;
        slurmdbd|slurmctld|slurmd) echo "/usr/sbin/$1" ;;
    esac
}

svc_pidfile() {
    case "$1" in
        munge) echo /run/munge/munged.pid ;;
        mariadb) echo "$MYSQL_PIDFILE" ;;
        slurmdbd|slurmctld|slurmd) echo "/run/$1.pid" ;;
    esac
}

svc_log() {
    case "$1" in
        munge) echo "$MUNGE_LOG" ;;
        mariadb) echo "$MYSQL_LOG" ;;
        slurmdbd|slurmctld|slurmd) echo "$SLURM_LOG_DIR/$1.log" ;;
    esac
}

# svc_pids SERVICE: pids of running processes of that service, one a line.
svc_pids() { daemon_pids "$(svc_bin "$1")" "$(svc_pidfile "$1")"; }

svc_running() { [[ -n "$(svc_pids "$1")" ]]; }

# svc_check SERVICE: talk to the daemon the way its clients do.
svc_check() {
    case "$1" in
        munge) munge -n | unmunge ;;
        mariadb) "$(mysql_admin)" --socket="$MYSQL_SOCKET" ping ;;
        slurmdbd) timeout 20 sacctmgr -n show cluster ;;
        slurmctld)
            local out
            out="$(timeout 20 scontrol ping 2>&1)" || true
            echo "$out"
            grep -q 'is UP' <<<"$out"
            ;;
        slurmd) timeout 20 scontrol show slurmd ;;
    esac
}

svc_healthy() { svc_check "$1" >/dev/null 2>&1; }

# svc_check_name SERVICE: svc_check's command, for messages.
svc_check_name() {
    case "$1" in
        munge) echo "'munge -n | unmunge'" ;;
        mariadb) echo "'mysqladmin ping'" ;;
        slurmdbd) echo "'sacctmgr -n show cluster'" ;;
        slurmctld) echo "'scontrol ping'" ;;
        slurmd) echo "'scontrol show slurmd'" ;;
    esac
}

# fail_unhealthy SERVICE MESSAGE: fail, showing what the check command said
# (e.g. a client that cannot parse slurm.conf).
fail_unhealthy() {
    local out
    out="$(svc_check "$1" 2>&1 | tail -n 5 || true)"
    fail "$2${out:+
$PROG: the check said: $out}"
}

# wait_healthy SERVICE TIMEOUT: poll until the service answers; fail early if
# its process is gone for good.
wait_healthy() {
    local gone=0
    poll "$2" 0.3 healthy_or_gone "$1"
}

# healthy_or_gone SERVICE: 0 when it answers, 2 when its process has been gone for
# several polls (daemons fork while starting: allow a short gap), 1: not yet.
healthy_or_gone() {
    svc_healthy "$1" && return 0
    if svc_running "$1"; then
        gone=0
    else
        gone=$((gone + 1))
        ((gone < 6)) || return 2
    fi
    return 1
}

# stop_svc SERVICE: SIGTERM, wait until the process is really gone, SIGKILL
# as a last resort so a following start never races the old daemon.
stop_svc() {
    local svc=$1 pids
    pids="$(svc_pids "$svc" | tr '\n' ' ')"
    if [[ -z "${pids// /}" ]]; then
        msg "$svc: not running"
        return 0
    fi
    msg "$svc: stopping (pid ${pids% })"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    # up to 30 s: slurmctld saves state
    if ! wait_while 30 svc_running "$svc"; then
        pids="$(svc_pids "$svc" | tr '\n' ' ')"
        warn "$svc did not stop after SIGTERM; sending SIGKILL to $pids"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        wait_while 10 svc_running "$svc" || { step "stop $svc" "$(svc_log "$svc")"; fail "$svc is still running"; }
    fi
    # Remove the pid file so nothing mistakes a recycled pid for the daemon.
    rm -f "$(svc_pidfile "$svc")"
    msg "$svc: stopped"
}

# ---------------------------------------------------------------- starting

# svc_up SERVICE SECONDS [CONFIG...]: does SERVICE run and answer? It is restarted
# first when one of its CONFIG files changed in this run; one that runs but does not
# answer yet gets SECONDS to do so. False: it does not run (start it).
svc_up() {
    local svc=$1 timeout=$2
    shift 2
    if (($#)) && svc_running "$svc" && conf_changed "$@"; then
        msg "$svc: config changed, restarting"
        stop_svc "$svc"
    fi
    svc_healthy "$svc" && return 0
    svc_running "$svc" || return 1
    msg "$svc: running but not answering yet, waiting"
    wait_healthy "$svc" "$timeout" || fail_unhealthy "$svc" "$svc runs but does not answer $(svc_check_name "$svc")"
}

# need_svc SERVICE: fail unless SERVICE answers (it must be started first).
need_svc() { svc_healthy "$1" || fail "$1 is not running: start it first"; }

# launch_slurm_daemon SERVICE SECONDS: start a Slurm daemon (it detaches itself) and
# wait until it answers.
launch_slurm_daemon() {
    msg "$1: starting"
    "/usr/sbin/$1" </dev/null >>"$(svc_log "$1")" 2>&1 9>&- || return
    wait_healthy "$1" "$2"
}

start_munge() {
    step "start munge" "$MUNGE_LOG"
    svc_up munge 10 && return 0
    msg "munge: starting"
    # munged logs to its own file; only errors before it forks go to stderr.
    local out="$STATE_DIR/munged.start.log"
    STEP_LOG=$out
    # --force: start even if a socket from a dead munged is left over.
    runuser -u munge -- /usr/sbin/munged --force </dev/null >"$out" 2>&1 9>&- ||
        fail "munged did not start"
    STEP_LOG=$MUNGE_LOG
    wait_healthy munge 15 || fail_unhealthy munge "munge does not answer $(svc_check_name munge)"
}

start_mariadb() {
    step "start mariadb" "$MYSQL_LOG"
    svc_up mariadb 60 && return 0
    mkdir -p "$MYSQL_RUNDIR"
    chown mysql:mysql "$MYSQL_RUNDIR"
    chmod 755 "$MYSQL_RUNDIR"
    # Nothing runs, so pid and socket files are leftovers of a dead server.
    rm -f "$MYSQL_PIDFILE" "$MYSQL_SOCKET" "$MYSQL_SOCKET.lock"
    mkdir -p "$MYSQL_DATADIR"
    # A datadir copied from another machine may carry another uid.
    fix_owner "$MYSQL_DATADIR" mysql
    if [[ ! -d $MYSQL_DATADIR/mysql ]]; then
        msg "mariadb: initialising $MYSQL_DATADIR"
        "$(first_cmd mariadb-install-db mysql_install_db)" --user=mysql \
            --datadir="$MYSQL_DATADIR" --auth-root-authentication-method=socket \
            >>"$MYSQL_LOG" 2>&1 || fail "mariadb-install-db failed"
    fi
    msg "mariadb: starting"
    # innodb settings slurmdbd checks at start (it logs an error below these).
    setsid "$(svc_bin mariadb)" --user=mysql --datadir="$MYSQL_DATADIR" \
        --socket="$MYSQL_SOCKET" --pid-file="$MYSQL_PIDFILE" \
        --bind-address=127.0.0.1 --log-error="$MYSQL_LOG" \
        --innodb-buffer-pool-size=1024M --innodb-lock-wait-timeout=900 \
        </dev/null >>"$MYSQL_LOG" 2>&1 9>&- &
    wait_healthy mariadb 60 || fail_unhealthy mariadb "mariadb does not answer $(svc_check_name mariadb)"
    # A datadir from an older MariaDB: upgrade system tables (no-op otherwise).
    "$(first_cmd mariadb-upgrade mysql_upgrade)" --silent >>"$MYSQL_LOG" 2>&1 ||
        warn "mariadb-upgrade failed (see $MYSQL_LOG)"
}

setup_database() {
    step "create database $DB_NAME and user $DB_USER" "$MYSQL_LOG"
    "$(mysql_client)" --socket="$MYSQL_SOCKET" -u root <<EOF || fail "SQL setup failed (is root allowed via unix_socket?)"
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    step "start slurmdbd" "$(svc_log slurmdbd)"
    svc_up slurmdbd 60 slurmdbd.conf && return 0
    need_svc mariadb
    need_svc munge
    setup_database
    step "start slurmdbd" "$(svc_log slurmdbd)"
    # The first start creates all tables: give it time.
    launch_slurm_daemon slurmdbd 90 ||
        fail_unhealthy slurmdbd "slurmdbd did not start or does not answer $(svc_check_name slurmdbd)"
}

start_slurmctld() {
    step "start slurmctld" "$(svc_log slurmctld)"
    svc_up slurmctld 60 slurm.conf gres.conf cgroup.conf && return 0
    need_svc munge
    launch_slurm_daemon slurmctld 60 ||
        fail_unhealthy slurmctld "slurmctld did not start or does not answer $(svc_check_name slurmctld)"
}

# start_slurmd: returns 3 (instead of failing) when slurmd dies at start in
# cgroup mode and the mode was only probed, so the caller can fall back.
start_slurmd() {
    step "start slurmd" "$(svc_log slurmd)"
    svc_up slurmd 60 slurm.conf gres.conf cgroup.conf && return 0
    need_svc munge
    launch_slurm_daemon slurmd 60 && return 0
    if [[ $MEM_MODE == cgroup && $MEM_MODE_VERIFIED == 0 ]]; then
        show_log "$(svc_log slurmd)"
        return 3
    fi
    fail_unhealthy slurmd "slurmd did not start or does not answer $(svc_check_name slurmd)"
}

node_state() { sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1; }

# ensure_node_ready: resume a down/drained node and wait until it is usable.
ensure_node_ready() {
    local log="$SLURM_LOG_DIR/slurmd.log" start=$SECONDS state resumed=0 poked=0 pid
    step "node $HOST ready in sinfo" "$log"
    while ((SECONDS - start < 60)); do
        state="$(node_state)"
        case "$state" in
            idle|mixed|allocated|completing|planned) return 0 ;;
            unknown*|*'*')
                # A restarted slurmctld only learns the node's state when
                # slurmd registers again, which can take a while; SIGHUP
                # (documented: reload config) makes slurmd register now.
                if ((poked == 0)) && pid="$(svc_pids slurmd | head -n1)" && [[ -n $pid ]]; then
                    kill -HUP "$pid" 2>/dev/null || true
                    poked=1
                fi
                ;;
            *down*|*drain*|*fail*)
                # ReturnToService=2 brings back a node that was merely not
                # responding; anything else (e.g. a drain) needs a resume.
                if ((resumed < 3)) && [[ $state != *'*' ]]; then
                    msg "node $HOST is $state: resuming"
                    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
                    resumed=$((resumed + 1))
                fi
                ;;
        esac
        sleep 0.3
    done
    fail "node $HOST is '$(node_state)' in sinfo, not idle ($(scontrol show node "$HOST" 2>/dev/null | grep -o 'Reason=.*' || true))"
}
