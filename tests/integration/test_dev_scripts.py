"""The dev services' own scripts, as scripts/up and scripts/test use them, on whichever
Debian (12: Slurm 22.05, 13: Slurm 24.11) this runs: ordering, fast and clear
failures, quiet stops, and the no-cgroup memory mode."""
from __future__ import annotations

import grp
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_CLUSTER = str(ROOT / "scripts" / "dev-cluster")
DEV_LDAP = str(ROOT / "scripts" / "dev-ldap")


def script(*args, env=None, check=True, timeout=240):
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
    return proc


@pytest.fixture
def restore_cluster():
    yield
    script(DEV_CLUSTER, "start")


def test_start_brings_munge_up_before_the_config_check(restore_cluster):
    """Slurm 24.11's config check (slurmd -G) needs munged: a start with munge down
    must start munge first, not fail on 'Munge encode failed' for ever."""
    script(DEV_CLUSTER, "stop", "munge")
    out = script(DEV_CLUSTER, "start")
    assert "munge: starting" in out.stdout
    assert script(DEV_CLUSTER, "status").stdout.startswith("munge:     running")


def test_starting_one_slurm_daemon_without_munge_says_so(restore_cluster):
    script(DEV_CLUSTER, "stop", "munge")
    proc = script(DEV_CLUSTER, "start", "slurmctld", check=False)
    assert proc.returncode != 0
    assert "munge is not running: start it first" in proc.stderr, proc.stderr
    script(DEV_CLUSTER, "start", "munge")


def test_a_host_with_only_loopback_is_refused_at_once():
    """Slurm resolves its listening address with AI_ADDRCONFIG, which finds nothing
    without a non-loopback IPv4 address; slurmdbd then retried for two minutes and
    died. The script checks first and says what to do (in a network namespace with
    only loopback, so the running cluster is not touched)."""
    t0 = time.monotonic()
    proc = script("unshare", "--net", "bash", "-c", f"ip link set lo up && exec {DEV_CLUSTER} preflight",
                  check=False)
    assert proc.returncode == 1
    assert "no IPv4 address but loopback" in proc.stderr and "veth" in proc.stderr
    assert time.monotonic() - t0 < 10
    assert "preflight: ok" in script(DEV_CLUSTER, "preflight").stdout


def test_install_names_the_slurm_version():
    """Slurm 24.11's `sbatch --version` needs a slurm.conf; install asks slurmd -V."""
    out = script(str(ROOT / "scripts" / "install")).stdout
    version = subprocess.run(["/usr/sbin/slurmd", "-V"], capture_output=True, text=True).stdout.split()[1]
    assert f"Slurm {version})" in out, out


def test_dev_ldap_stop_and_start_print_no_errors():
    stop = script(DEV_LDAP, "stop")
    assert "slapd stopped" in stop.stdout and stop.stderr == "", stop.stderr
    start = script(DEV_LDAP, "start")
    assert "ready" in start.stdout and "No such file" not in start.stderr


def test_dev_ldap_start_puts_the_unix_side_back_as_the_directory_says():
    """The people's Unix users and groups follow the directory (read with ldap3): drift
    is repaired with the same numbers and members, and a second start changes nothing."""
    subprocess.run(["gpasswd", "-d", "bob", "xray-team"], check=True, capture_output=True)
    subprocess.run(["gpasswd", "-M", "alice,bob", "hpc-users"], check=True, capture_output=True)
    subprocess.run(["usermod", "-s", "/bin/sh", "-c", "someone else", "erin"], check=True)
    os.chmod("/home/dave", 0o700)
    try:
        out = script(DEV_LDAP, "start").stdout
        assert "members of group xray-team: alice,bob" in out, out
        assert "members of group hpc-users: alice,bob,carol,dave,erin" in out, out
        again = script(DEV_LDAP, "start")
        assert "members of group" not in again.stdout and again.stderr == "", again
    finally:
        script(DEV_LDAP, "start")
    assert grp.getgrnam("xray-team").gr_mem == ["alice", "bob"]
    assert grp.getgrnam("all-staff").gr_mem == ["alice", "bob", "carol", "dave", "erin"]
    assert sorted(grp.getgrnam("hpc-users").gr_mem) == ["alice", "bob", "carol", "dave", "erin"]
    erin = pwd.getpwnam("erin")
    assert (erin.pw_uid, erin.pw_gid, erin.pw_gecos, erin.pw_shell) == (
        20005, 20005, "Erin Evans", "/bin/bash")
    assert os.stat("/home/dave").st_mode & 0o777 == 0o755


def test_no_cgroup_memory_mode(gw_sqlite, restore_cluster):
    """DEV_CLUSTER_MEM_MODE=nocgroup (proctrack/linuxproc + OverMemoryKill), the
    fallback for machines without usable cgroups: the sample jobs pass, and the
    gateway still calls an out-of-memory kill by its name."""
    mode_file = Path("/var/lib/gateway-dev/slurm-memory-mode")
    detected = mode_file.read_text()
    start = script(DEV_CLUSTER, "start", env={"DEV_CLUSTER_MEM_MODE": "nocgroup"})
    assert "memory enforcement: nocgroup" in start.stdout
    conf = Path("/etc/slurm/slurm.conf").read_text()
    assert "ProctrackType=proctrack/linuxproc" in conf and "OverMemoryKill" in conf
    assert "selftest passed" in script(DEV_CLUSTER, "selftest").stdout
    gw = gw_sqlite
    gw.environment()
    gw.experiment()
    # Held longer than the accounting sampler's period (JobAcctGatherFrequency=5).
    script_text = ("python3 -c 'import time; b = bytearray(1500 * 2**20); time.sleep(15)' "
                   "|| echo 'child died'\nexit 0\n")
    job = gw.wait(gw.run(gw.template(script=script_text)["id"])["id"])
    assert job["status"] == "Failed" and "out of memory" in job["reason"], job
    assert mode_file.read_text() == detected  # a forced mode is not remembered
