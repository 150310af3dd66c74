# shellcheck shell=bash
# The dev cluster's configuration (sourced by scripts/dev-cluster): how memory is
# enforced here (cgroups or not), slurm.conf, gres.conf (fake GPUs), slurmdbd.conf and
# cgroup.conf rendered from etc/dev-cluster, and the folders, users, devices and munge
# key the daemons need.

# version_ge A B: true if dotted version A >= B.
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }

# ---------------------------------------------------------------- memory mode

mode_fingerprint() {
    echo "slurm=$(slurm_version) cgroupfs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || echo none) kernel=$(uname -r)"
}

# probe_cgroups: can slurmd use cgroups here (v1 or v2) to enforce memory?
probe_cgroups() {
    local fstype probe c
    fstype="$(stat -fc %T /sys/fs/cgroup 2>/dev/null || echo none)"
    case "$fstype" in
        cgroup2fs)
            grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null || return 1
            probe=/sys/fs/cgroup/gateway-dev-probe.$$
            mkdir "$probe" 2>/dev/null || return 1
            rmdir "$probe"
            ;;
        tmpfs)
            # cgroup v1 or hybrid. Slurm's autodetect looks at .../systemd:
            # cgroup v1 there means v1 (fine); cgroup2 means hybrid, which
            # slurmd refuses ("Hybrid mode is not supported").
            [[ "$(stat -fc %T /sys/fs/cgroup/systemd 2>/dev/null)" == cgroupfs ]] || return 1
            for c in memory freezer; do
                [[ "$(stat -fc %T /sys/fs/cgroup/$c 2>/dev/null)" == cgroupfs ]] || return 1
                probe=/sys/fs/cgroup/$c/gateway-dev-probe.$$
                mkdir "$probe" 2>/dev/null || return 1
                rmdir "$probe"
            done
            ;;
        *) return 1 ;;
    esac
}

decide_mem_mode() {
    local want="${DEV_CLUSTER_MEM_MODE:-auto}" fp cached
    case "$want" in
        cgroup|nocgroup) MEM_MODE=$want; MEM_MODE_VERIFIED=1; return 0 ;;
        auto) ;;
        *) fail "DEV_CLUSTER_MEM_MODE must be auto, cgroup or nocgroup (got '$want')" ;;
    esac
    fp="$(mode_fingerprint)"
    if [[ -r $MODE_FILE ]]; then
        cached="$(head -n1 "$MODE_FILE")"
        if [[ "${cached#* }" == "$fp" ]]; then
            MEM_MODE="${cached%% *}"
            MEM_MODE_VERIFIED=1
            return 0
        fi
    fi
    if probe_cgroups; then MEM_MODE=cgroup; else MEM_MODE=nocgroup; fi
    MEM_MODE_VERIFIED=0
}

remember_mem_mode() {
    mkdir -p "$STATE_DIR"
    echo "$1 $(mode_fingerprint)" >"$MODE_FILE"
    MEM_MODE=$1
    MEM_MODE_VERIFIED=1
}

# ---------------------------------------------------------------- configs

# install_file SRC DST MODE OWNER: replace DST only if the content changed,
# so a second start does not restart anything.
install_file() {
    local src=$1 dst=$2 mode=$3 owner=$4
    if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
        rm -f "$src"
    else
        mv -f "$src" "$dst"
        CONF_CHANGED+=("$(basename "$dst")")
    fi
    chmod "$mode" "$dst"
    chown "$owner" "$dst"
}

# render TEMPLATE DST MODE OWNER: substitute @NAME@ placeholders.
render() {
    local tpl=$1 dst=$2 mode=$3 owner=$4 tmp proctrack task jagp
    tmp="$(mktemp "$dst.XXXXXX")"
    if [[ $MEM_MODE == cgroup ]]; then
        proctrack=proctrack/cgroup
        # Not task/affinity: the node claims 8 CPUs on a smaller VM and
        # binding to CPUs that do not exist fails.
        task=task/cgroup
        jagp="# JobAcctGatherParams: not needed, cgroups enforce --mem (cgroup.conf)"
    else
        proctrack=proctrack/linuxproc
        task=task/none
        jagp="JobAcctGatherParams=OverMemoryKill"
    fi
    sed -e "s|@HOST@|$HOST|g" \
        -e "s|@HOST_ADDR@|$HOST_ADDR|g" \
        -e "s|@PROCTRACK_TYPE@|$proctrack|g" \
        -e "s|@TASK_PLUGIN@|$task|g" \
        -e "s|@JOBACCT_GATHER_PARAMS@|$jagp|g" \
        -e "s|@TMPFS@|$TMPFS_DIR|g" \
        -e "s|@DB_PASS@|$DB_PASS|g" \
        "$tpl" >"$tmp"
    if grep -v '^[[:space:]]*#' "$tmp" | grep -q '@[A-Z_]*@'; then
        rm -f "$tmp"
        fail "unreplaced placeholder in $tpl"
    fi
    install_file "$tmp" "$dst" "$mode" "$owner"
}

write_configs() {
    step "write configs to $SLURM_ETC"
    mkdir -p "$SLURM_ETC"
    render "$TEMPLATE_DIR/slurm.conf.in" "$SLURM_ETC/slurm.conf" 644 root:root
    render "$TEMPLATE_DIR/gres.conf.in" "$SLURM_ETC/gres.conf" 644 root:root
    render "$TEMPLATE_DIR/slurmdbd.conf.in" "$SLURM_ETC/slurmdbd.conf" 600 slurm:slurm
    local tmp
    tmp="$(mktemp "$SLURM_ETC/cgroup.conf.XXXXXX")"
    if [[ $MEM_MODE == cgroup ]]; then
        cp "$TEMPLATE_DIR/cgroup.conf" "$tmp"
        # cgroup v2 without systemd: let slurmd enable the controllers it
        # needs down the tree. The key is unknown (fatal) before 23.11.
        if [[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" == cgroup2fs ]] &&
            version_ge "$(slurm_version)" 23.11; then
            printf '\n# Added by scripts/dev-cluster (cgroup v2, Slurm >= 23.11).\nEnableControllers=yes\n' >>"$tmp"
        fi
    else
        {
            echo "# Written by scripts/dev-cluster: cgroups are not usable on this machine,"
            echo "# memory is enforced by JobAcctGatherParams=OverMemoryKill instead."
            # Slurm >= 24.05 would otherwise still try (and fail) to set up cgroups.
            if version_ge "$(slurm_version)" 24.05; then echo "CgroupPlugin=disabled"; fi
        } >"$tmp"
    fi
    install_file "$tmp" "$SLURM_ETC/cgroup.conf" 644 root:root
}

# check_configs: parse slurm.conf + gres.conf now (slurmd -G only prints the GRES
# setup), so a bad option is reported here and not as a daemon that won't answer.
# Slurm >= 24.11 also asks munged for a credential there: munge must run first.
check_configs() {
    step "check that Slurm's daemons can listen here"
    check_bind_address
    step "check $SLURM_ETC/slurm.conf and gres.conf" "$STATE_DIR/slurm-conf-check.log"
    svc_healthy munge || fail "munge is not running: start it first ('$0 start munge')"
    /usr/sbin/slurmd -G >"$STEP_LOG" 2>&1 || fail "Slurm rejects the generated config"
}

# has_bind_address: can a daemon listen on "any address" here? Slurm (22.05 and
# 24.11 alike) resolves addresses (its own listening one too) with getaddrinfo(..., AF_INET,
# AI_ADDRCONFIG); glibc answers "Name or service not known" to that when the
# host has no IPv4 address but loopback, and slurmdbd retries for about two
# minutes before it dies with "slurm_init_msg_engine_port error".
has_bind_address() {
    command -v python3 >/dev/null 2>&1 || return 0
    python3 - "$1" <<'PYEOF' >/dev/null 2>&1
import socket, sys
socket.getaddrinfo(None, int(sys.argv[1]), socket.AF_INET, socket.SOCK_STREAM, 0,
                   socket.AI_PASSIVE | socket.AI_ADDRCONFIG)
PYEOF
}

check_bind_address() {
    local port
    port="$(sed -n 's/^DbdPort=//p' "$TEMPLATE_DIR/slurmdbd.conf.in")"
    has_bind_address "${port:-6819}" && return 0
    STEP_LOG=""
    fail "this host has no IPv4 address but loopback, and slurmdbd $(slurm_version) cannot listen
dev-cluster: without one (getaddrinfo(NULL, ${port:-6819}, AI_ADDRCONFIG) finds nothing). Give the host an
dev-cluster: address, e.g. a veth pair: ip link add gw0 type veth peer name gw1 &&
dev-cluster: ip addr add 198.51.100.1/24 dev gw0 && ip link set gw0 up && ip link set gw1 up"
}

conf_changed() {
    local f c
    for f in "$@"; do
        for c in "${CONF_CHANGED[@]+"${CONF_CHANGED[@]}"}"; do
            [[ $c == "$f" ]] && return 0
        done
    done
    return 1
}

# ---------------------------------------------------------------- preparation

prepare() {
    step "prepare directories, users and devices"
    mkdir -p "$STATE_DIR" "$SLURM_LOG_DIR" /var/spool/slurmctld /var/spool/slurmd "$TMPFS_DIR"
    fix_owner /var/spool/slurmctld slurm
    chown slurm:slurm "$SLURM_LOG_DIR"
    chmod 755 "$SLURM_LOG_DIR" /var/spool/slurmd
    chmod 1777 "$TMPFS_DIR"

    # Fake GPUs for gres.conf (same device as /dev/null).
    local i
    for i in 0 1; do
        [[ -e /dev/fakegpu$i ]] || mknod -m 666 "/dev/fakegpu$i" c 1 3
    done

    # The Unix user gateway jobs run as.
    if ! id "$JOB_USER" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /bin/bash "$JOB_USER"
        msg "created user $JOB_USER"
    fi

    # The node must resolve to itself for the Slurm clients' sake.
    if ! getent hosts "$HOST" >/dev/null; then
        echo "127.0.0.1 $HOST" >>/etc/hosts
        msg "added $HOST to /etc/hosts"
    fi

    # munge: key and runtime dirs.
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        msg "created munge key"
    fi
    # (-R: also a log file some earlier root-run munged left behind)
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 700 /etc/munge /var/log/munge
    chmod 400 /etc/munge/munge.key
    chmod 755 /run/munge
    chmod 711 /var/lib/munge

    # Accounting entities are read by the add step; fail early if missing.
    [[ -r $TEMPLATE_DIR/accounts ]] || fail "$TEMPLATE_DIR/accounts missing"
}
