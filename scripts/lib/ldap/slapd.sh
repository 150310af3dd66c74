# shellcheck shell=bash
# Our slapd process (sourced by scripts/dev-ldap): find it, check it answers a
# service bind, start it, stop it, and bring it from whatever state to running the
# current config and data.

# ---------------------------------------------------------------- our slapd process

# slapd_pid: pid of OUR slapd if it runs, else nothing. Ours means the slapd
# binary running with "-F $CONF_DIR" (Debian's own instance may run too).
slapd_pid() {
    local pids
    pids="$(daemon_pids "$SLAPD" "$PID_FILE" "$CONF_DIR")"
    echo "${pids%%$'\n'*}"
}

# cmdline_current PID: was that slapd started the way we start it now?
cmdline_current() { has_arg "$1" "$LISTEN"; }

# svc_whoami [SECONDS]: bind as the service account, the way the gateway
# does. Prints ldapwhoami's output; returns its exit status (49: wrong
# credentials, 124: no answer in time).
svc_whoami() {
    [[ -s $SERVICE_PW_FILE ]] || return 1
    timeout "${1:-10}" ldapwhoami -x -o nettimeout=3 -H "$URL" -D "$SERVICE_DN" -y "$SERVICE_PW_FILE" 2>&1
}

answers() { svc_whoami 3 >/dev/null 2>&1; }

# wait_answer TIMEOUT [PID]: until the service bind works. Returns 2 when
# slapd is gone (PID: the one just started), 49 when it answers but refuses
# the service password, 1 on time-out.
wait_answer() {
    local started=${2:-} gone=0
    poll "$1" 0.1 answer_or_gone
}

# answer_or_gone: one try for wait_answer (1: not yet).
answer_or_gone() {
    # Exited at start (e.g. port in use): say so at once.
    if [[ -n $started ]] && ! alive "$started" && [[ -z $(slapd_pid) ]]; then
        return 2
    fi
    local rc=0
    svc_whoami 3 >/dev/null 2>&1 || rc=$?
    ((rc == 0 || rc == 49)) && return "$rc"
    if [[ -n $(slapd_pid) ]]; then
        gone=0
    else
        gone=$((gone + 1))
        ((gone < 5)) || return 2
    fi
    return 1
}

stop_slapd() {
    local pid
    pid="$(slapd_pid)"
    if [[ -z $pid ]]; then
        rm -f "$PID_FILE"
        return 0
    fi
    msg "stopping slapd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true     # in case it was stopped (SIGSTOP)
    if ! wait_while 20 alive "$pid"; then
        warn "slapd (pid $pid) did not stop after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_while 10 alive "$pid" || fail "slapd (pid $pid) is still running"
    fi
    rm -f "$PID_FILE"
    msg "slapd stopped"
}


# allow_apparmor: where slapd has an AppArmor profile (Ubuntu ships one; some
# Debian setups too) let it use our directory.
allow_apparmor() {
    local profile=/etc/apparmor.d/usr.sbin.slapd local_file=/etc/apparmor.d/local/usr.sbin.slapd
    [[ -f $profile && -d /sys/kernel/security/apparmor ]] || return 0
    command -v apparmor_parser >/dev/null 2>&1 || return 0
    if ! grep -q 'local/usr.sbin.slapd' "$profile"; then
        warn "$profile has no local include: slapd may be denied access to $LDAP_DIR"
        return 0
    fi
    grep -qF "$LDAP_DIR/" "$local_file" 2>/dev/null && return 0
    step "allow slapd's AppArmor profile to use $LDAP_DIR"
    mkdir -p "$(dirname "$local_file")"
    printf '# Added by the gateway'"'"'s scripts/dev-ldap\n%s/ r,\n%s/** rwk,\n' "$LDAP_DIR" "$LDAP_DIR" >>"$local_file"
    apparmor_parser -r "$profile" || warn "apparmor_parser -r $profile failed"
}

start_slapd() {
    step "start slapd on $URL and $LDAPS_URL" "$LOG"
    allow_apparmor
    # Nothing of ours runs, so pid/args files are leftovers.
    rm -f "$PID_FILE" "$RUN_DIR/slapd.args"
    # Keep the log from growing without end across many test runs.
    if [[ -f $LOG ]] && (($(stat -c %s "$LOG") > 20 * 1024 * 1024)); then
        mv -f "$LOG" "$LOG.1"
    fi
    echo "== $(date '+%F %T') dev-ldap: starting slapd" >>"$LOG"
    msg "starting slapd ($URL, $LDAPS_URL, -F $CONF_DIR)"
    # -d: stay in the foreground and write the log to slapd.log (no syslog
    # needed); setsid + & detach it from us.
    (cd / && exec setsid "$SLAPD" -d "$DEBUG_LEVEL" -h "$LISTEN" -F "$CONF_DIR" \
        -u "$SLAPD_USER" -g "$SLAPD_GROUP" </dev/null >>"$LOG" 2>&1 9>&-) &
    local rc=0 started=$!
    wait_answer 30 "$started" || rc=$?
    case $rc in
        0) msg "slapd answers (pid $(slapd_pid))" ;;
        2) fail "slapd exited at start (see its log below; a port in use? $LDAP_PORT and $LDAPS_PORT must be free)" ;;
        49) return 49 ;;
        *) fail "slapd does not answer a service bind on $URL within 30 s ($(svc_whoami | tail -n1))" ;;
    esac
}

# bring_up: from whatever state to our slapd running the current config/data.
bring_up() {
    local pid reason=""
    pid="$(slapd_pid)"
    if [[ -n $pid ]]; then
        if ((CONFIG_CHANGED)); then reason="its config changed"
        elif ((DATA_CHANGED)); then reason="the test directory changed"
        elif ((TLS_CHANGED)); then reason="new TLS certificates"
        elif ! cmdline_current "$pid"; then reason="it was started with other options"
        else
            # Running with the current config, but not answering: maybe it is
            # just starting, else it is stuck.
            local rc=0
            wait_answer 5 || rc=$?
            case $rc in
                0) return 0 ;;
                49) reason="it refuses the service password" ; DATA_CHANGED=1
                    (umask 077 && render_directory >"$DATA_SRC.new") ;;
                *) reason="it does not answer" ;;
            esac
        fi
        step "stop the running slapd ($reason)" "$LOG"
        msg "restarting slapd (pid $pid): $reason"
        stop_slapd
    fi
    prepare_dirs
    ((CONFIG_CHANGED == 0)) || build_config
    ((DATA_CHANGED == 0)) || load_data
    fix_owner "$DATA_DIR" "$SLAPD_USER" all
    fix_owner "$CONF_DIR" "$SLAPD_USER" all
    local rc=0
    start_slapd || rc=$?
    if ((rc == 49)); then
        # The database does not match the service password file (e.g. the
        # file was deleted and made anew): reload the test directory once.
        msg "slapd refuses the service password: reloading the test directory"
        stop_slapd
        (umask 077 && render_directory >"$DATA_SRC.new")
        load_data
        rc=0
        start_slapd || rc=$?
        ((rc == 0)) || fail "slapd still refuses the service password from $SERVICE_PW_FILE"
    fi
}
