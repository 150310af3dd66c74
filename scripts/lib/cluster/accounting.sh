# shellcheck shell=bash
# The dev cluster's accounting (sourced by scripts/dev-cluster): the cluster, accounts
# and associations in slurmdbd, the gateway's service user as a Slurm operator, and
# the sample jobs of `selftest`.

# ---------------------------------------------------------------- accounting

sacctmgr_add() {   # sacctmgr_add ARGS...: sacctmgr -i add, "already exists" is fine
    local out rc=0
    out="$(sacctmgr -i add "$@" 2>&1)" || rc=$?
    if ((rc != 0)) && ! grep -qiE 'already exist|nothing new added' <<<"$out"; then
        echo "$out" >&2
        fail "sacctmgr add $* failed"
    fi
}

ensure_cluster() {
    step "register cluster $CLUSTER in accounting" "$SLURM_LOG_DIR/slurmdbd.log"
    if ! sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; then
        msg "registering cluster $CLUSTER"
        sacctmgr_add cluster "$CLUSTER"
    fi
}

# ensure_accounts ACCOUNTS USERS: create missing accounts and associations.
# ACCOUNTS and USERS are comma-separated. One query up front, then only
# the missing pieces are added, so a start with everything in place is cheap.
ensure_accounts() {
    local accts=$1 users=$2 assocs a u missing
    step "create accounts $accts" "$SLURM_LOG_DIR/slurmdbd.log"
    assocs="$(sacctmgr -n -P show assoc cluster="$CLUSTER" format=account,user 2>&1)" ||
        fail "cannot list associations: $assocs"
    missing=""
    for a in ${accts//,/ }; do
        grep -q "^$a|" <<<"$assocs" || missing+="${missing:+,}$a"
    done
    if [[ -n $missing ]]; then
        msg "creating accounts $missing"
        sacctmgr_add account "$missing" cluster="$CLUSTER" description=gateway-dev organization=gateway-dev
    fi
    for u in ${users//,/ }; do
        missing=""
        for a in ${accts//,/ }; do
            grep -qx "$a|$u" <<<"$assocs" || missing+="${missing:+,}$a"
        done
        if [[ -n $missing ]]; then
            msg "associating user $u with $missing"
            sacctmgr_add user "$u" account="$missing" cluster="$CLUSTER"
        fi
    done
}

# ensure_service_operator: the gateway's service user (made by scripts/install) keeps
# licence associations in line with the gateway, as a Slurm operator; its own
# account may run nothing.
ensure_service_operator() {
    id "$SERVICE_USER" >/dev/null 2>&1 || return 0
    [[ "$(sacctmgr -n -P show user "$SERVICE_USER" format=adminlevel 2>/dev/null)" == Operator ]] && return 0
    step "make $SERVICE_USER a Slurm operator" "$SLURM_LOG_DIR/slurmdbd.log"
    sacctmgr_add account gateway_service cluster="$CLUSTER" description="the gateway service user, runs no jobs" \
        organization=gateway-dev GrpSubmitJobs=0
    sacctmgr_add user "$SERVICE_USER" account=gateway_service DefaultAccount=gateway_service cluster="$CLUSTER"
    sacctmgr -i modify user name="$SERVICE_USER" set AdminLevel=Operator >/dev/null ||
        fail "could not make $SERVICE_USER a Slurm operator"
    msg "$SERVICE_USER is a Slurm operator"
}

read_accounts() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$TEMPLATE_DIR/accounts" | grep -v '^$' || true
}

ensure_file_accounts() {
    local accts
    accts="$(read_accounts | paste -sd, -)"
    [[ -n $accts ]] || fail "no accounts in $TEMPLATE_DIR/accounts"
    ensure_accounts "$accts" "root,$JOB_USER"
}

# verify_cgroup_mode: one short job proves cgroup containment works on this
# machine; its outcome is cached so later starts skip it.
verify_cgroup_mode() {
    local acct id state="" start=$SECONDS
    step "check that cgroup job containment works" "$SLURM_LOG_DIR/slurmd.log"
    acct="$(read_accounts | head -n1)"
    msg "checking cgroup mode with a test job"
    id="$(sbatch --parsable --account="$acct" --chdir=/tmp --output=/dev/null \
        --mem=64M --time=1 --job-name=dev-cluster-probe --wrap 'true' 2>&1)" ||
        fail "test job submission failed: $id"
    while ((SECONDS - start < 45)); do
        state="$(scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true)"
        case "$state" in
            COMPLETED) return 0 ;;
            FAILED|NODE_FAIL|CANCELLED|TIMEOUT|OUT_OF_MEMORY|BOOT_FAIL) return 1 ;;
        esac
        # A job that cannot even launch leaves the node drained.
        [[ "$(node_state)" == *drain* ]] && return 1
        sleep 0.3
    done
    scancel "$id" 2>/dev/null || true
    return 1
}

# selftest: the manual checks, as jobs of $JOB_USER; prints sacct lines.
cmd_selftest() {
    need_root
    svc_healthy slurmctld || fail "cluster not running: run '$0 start' first"
    local acct sub ids=() id out rc alloc
    acct="$(read_accounts | head -n1)"
    sub=(runuser -u "$JOB_USER" -- sbatch --parsable --account="$acct" --chdir=/tmp)
    step "selftest: submit jobs"
    id="$("${sub[@]}" --output=/tmp/dev-cluster-cpu.log --job-name=st-cpu --wrap 'sleep 2; echo hi')"; ids+=("$id"); msg "cpu job $id"
    # shellcheck disable=SC2016  # expanded by the job, not here
    id="$("${sub[@]}" --output=/tmp/dev-cluster-gpu.log --job-name=st-gpu -p gpu --gres=gpu:testgpu:1 \
        --wrap 'echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES; sleep 1')"; ids+=("$id"); msg "gpu job $id"
    id="$("${sub[@]}" --output=/tmp/dev-cluster-tmp.log --job-name=st-tmp --tmp=1G --wrap 'df -h /tmp | tail -1')"; ids+=("$id"); msg "tmp job $id"
    alloc="python3 -c 'b=bytearray(900*1024*1024); import time; time.sleep(5)'"
    command -v python3 >/dev/null || alloc="head -c 900M /dev/zero | tail"
    id="$("${sub[@]}" --output=/tmp/dev-cluster-oom.log --job-name=st-oom --mem=100M --wrap "$alloc")"; ids+=("$id"); msg "oom job $id"
    id="$("${sub[@]}" --output=/tmp/dev-cluster-held.log --job-name=st-held --hold --wrap 'echo released')"; ids+=("$id"); msg "held job $id"
    sleep 1
    squeue -j "$id" -h -o '%i %T %r'
    scontrol release "$id"
    rc=0
    out="$(runuser -u "$JOB_USER" -- sbatch --parsable --account=no_such_account --chdir=/tmp --wrap true 2>&1)" || rc=$?
    if ((rc == 0)); then warn "job with a bad account was accepted: $out"; else msg "bad account refused: $out"; fi
    step "selftest: wait for jobs"
    local t0=$SECONDS list states
    list="$(IFS=,; echo "${ids[*]}")"
    # sacct lags slurmctld by a few seconds: wait until it has final states.
    while :; do
        states="$(sacct -X -n -P -j "$list" -o JobName,State,AllocTRES 2>/dev/null || true)"
        if [[ $(grep -c . <<<"$states") -eq ${#ids[@]} ]] &&
            ! grep -qE '\|(PENDING|RUNNING|REQUEUED|SUSPENDED|COMPLETING)\|' <<<"$states"; then
            break
        fi
        ((SECONDS - t0 < 120)) || fail "jobs not finished in sacct after 120 s"
        sleep 1
    done
    sacct -X -P -j "$list" \
        -o JobID,JobName,Account,State,ExitCode,DerivedExitCode,AllocTRES,ElapsedRaw,CPUTimeRAW
    # Expected outcomes; OverMemoryKill (no cgroups) ends the OOM job FAILED.
    local bad=0 want
    for want in 'st-cpu|COMPLETED|' 'st-gpu|COMPLETED|.*gres/gpu=1' 'st-tmp|COMPLETED|' \
        'st-oom|(OUT_OF_MEMORY|FAILED)|' 'st-held|COMPLETED|'; do
        grep -qE "^$want" <<<"$states" || { warn "selftest: no job matching '$want'"; bad=1; }
    done
    ((rc != 0)) || { warn "selftest: a bad account was accepted"; bad=1; }
    ((bad == 0)) || fail "selftest found problems (see above)"
    msg "selftest passed"
}
