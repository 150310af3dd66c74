"""Privilege separation, with two people's real jobs on the real cluster.

The gateway runs as its service user; alice's and bob's jobs run as alice and bob.
What each job may open on disk, and which Slurm accounts it may charge, follows the
role model: folder ACLs for data and job folders, associations for licences. The
gateway's own state is out of every job's reach.
"""
from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

from gateway.models import User
from tests.conftest import SERVICE_USER, as_service, hand_to_service

# Prints READ/DENIED for every path in DC_READ (file contents or folder listing) and
# WROTE/DENIED for every folder in DC_WRITE (a file of the job's user made there),
# MOVED/DENIED mv:PATH for every path in DC_MOVE (renamed, as a job swapping it would), and
# tries each Slurm account in DC_ACCOUNTS with a held job (cancelled at once).
PROBE = r"""
for p in $DC_READ; do
    if { [ -d "$p" ] && ls "$p" >/dev/null 2>&1; } || { [ -f "$p" ] && cat "$p" >/dev/null 2>&1; }; then
        echo "READ $p"
    else
        echo "DENIED $p"
    fi
done
for d in $DC_WRITE; do
    if echo "from $(id -un)" > "$d/$(id -un)-was-here" 2>/dev/null; then
        echo "WROTE $d"
    else
        echo "DENIED $d"
    fi
done
for m in $DC_MOVE; do
    if mv "$m" "$m.moved" 2>/dev/null; then echo "MOVED mv:$m"; else echo "DENIED mv:$m"; fi
done
for a in $DC_ACCOUNTS; do
    if id=$(sbatch --parsable --hold -A "$a" -p cpu --mem=10M -t 1 -o /dev/null --wrap true 2>&1); then
        scancel "$id"; echo "CHARGED $a"
    else
        echo "REFUSED $a"
    fi
done
echo ok > "$JOB_OUTPUT_DIR/visible.txt"
echo hidden > "$JOB_OUTPUT_DIR/private.txt"
chmod 000 "$JOB_OUTPUT_DIR/private.txt"
"""


VERDICT = re.compile(r"^(READ|DENIED|WROTE|MOVED|CHARGED|REFUSED) (\S+)$", re.M)


def _as_people(gw):
    """alice and bob run as their own Unix users (as LDAP people do)."""
    for name in ("alice", "bob"):
        User.update(uid_number=pwd.getpwnam(name).pw_uid).where(User.username == name).execute()


def _setup(gw):
    _as_people(gw)
    gw.environment(public=True)
    gw.template(name="probe", script=PROBE, public=True,
                inputs=[{"name": n, "type": "string", "default": ""}
                        for n in ("DC_READ", "DC_WRITE", "DC_MOVE", "DC_ACCOUNTS")])
    for name, token in (("alice", gw.alice_token), ("bob", gw.bob_token)):
        gw.ok("POST", "/licenses/test-lab/access", 201, json={"user": name, "role": "member"})
        gw.experiment(project=f"p-{name}", experiment="e", token=token)


def _probe(gw, token, project, read=(), write=(), move=(), accounts=()):
    job = gw.run("probe", token=token, project=project, experiment="e",
                 inputs={"DC_READ": " ".join(map(str, read)), "DC_WRITE": " ".join(map(str, write)),
                         "DC_MOVE": " ".join(map(str, move)), "DC_ACCOUNTS": " ".join(accounts)})
    done = gw.wait(job["id"])
    assert done["status"] == "Completed", done
    text = gw.ok("GET", f"/jobs/{job['id']}/log").get_data(as_text=True)
    # path or account -> what happened (for a path both read and written: the write)
    return done, {what: verdict for verdict, what in VERDICT.findall(text)}


def test_each_persons_job_reaches_only_what_the_role_model_gives(gw_sqlite):
    gw = gw_sqlite  # once, on SQLite: what this tests is Slurm's part, not the database's
    _setup(gw)
    data = gw.config.data_root / "projects"
    bob_job, _ = _probe(gw, gw.bob_token, "p-bob", write=[data / "p-bob" / "e"])
    bob_folder = gw.ctx.job_paths(bob_job["id"])
    gateway_state = [gw.config_path, gw.base / "gateway.db", gw.config.store_root, gw.config.jobs_root,
                     data, bob_folder.output_dir / "visible.txt", bob_folder.log,
                     bob_folder.base, data / "p-bob", data / "p-bob" / "e"]
    job, seen = _probe(gw, gw.alice_token, "p-alice",
                       read=[data / "p-alice" / "e", *gateway_state],
                       write=[data / "p-alice" / "e", data / "p-alice" / "e" / "Processed",
                              data / "p-bob" / "e"],
                       move=[data / "p-alice" / "e" / "Processed"],
                       accounts=["test_lab", "test_other", "gateway_service"])
    assert seen[str(data / "p-alice" / "e")] == "WROTE"  # checked last for the path: write
    for p in gateway_state:
        assert seen[str(p)] == "DENIED", (p, seen)
    # Processed/ is written by the gateway only, and no job can swap it for its own.
    assert seen[str(data / "p-alice" / "e" / "Processed")] == "DENIED"
    assert seen[f"mv:{data / 'p-alice' / 'e' / 'Processed'}"] == "DENIED"
    assert seen[str(data / "p-bob" / "e")] == "DENIED"
    # alice sponsors other-lab (config) and was granted test-lab: Slurm agrees.
    assert seen["test_lab"] == "CHARGED" and seen["test_other"] == "CHARGED"
    assert seen["gateway_service"] == "REFUSED"

    # bob becomes a Member of alice's project: his job reads and writes there, also
    # what alice's job wrote; revoked, he is out again.
    gw.ok("POST", "/projects/p-alice/access", 201, token=gw.alice_token,
          json={"user": "bob", "role": "member"})
    mine = data / "p-alice" / "e" / "alice-was-here"
    _, seen = _probe(gw, gw.bob_token, "p-bob", read=[mine], write=[data / "p-alice" / "e"],
                     accounts=["test_lab", "test_other"])
    assert seen[str(mine)] == "READ" and seen[str(data / "p-alice" / "e")] == "WROTE"
    assert seen["test_lab"] == "CHARGED" and seen["test_other"] == "REFUSED"
    gw.ok("DELETE", "/projects/p-alice/access", 200, token=gw.alice_token, json={"user": "bob"})
    _, seen = _probe(gw, gw.bob_token, "p-bob", read=[mine, data / "p-alice" / "e"])
    assert seen[str(mine)] == "DENIED" and seen[str(data / "p-alice" / "e")] == "DENIED"


def test_a_file_a_job_makes_unreadable_is_skipped_by_the_unprivileged_poller(gw):
    _setup(gw)
    job = gw.run("probe", token=gw.alice_token, project="p-alice", experiment="e", inputs={})
    hand_to_service(gw.base)
    env = {**os.environ, "GATEWAY_CONFIG": str(gw.config_path)}
    for _ in range(120):
        out = subprocess.run(as_service([sys.executable, "-m", "gateway.cli", "worker", "--once"]),
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        done = gw.ok("GET", f"/jobs/{job['id']}")
        if done["finalized"]:
            break
    assert done["status"] == "Completed", done
    assert any("private.txt: the job made it unreadable, skipped" in n for n in done["notes"]), done
    processed = gw.config.data_root / "projects" / "p-alice" / "e" / "Processed" / f"probe-{job['id']}"
    assert (processed / "visible.txt").read_text() == "ok\n"
    assert not (processed / "private.txt").exists()
    assert processed.stat().st_uid == pwd.getpwnam(SERVICE_USER).pw_uid


def test_associations_follow_licence_membership_and_check_fixes_drift(gw):
    _setup(gw)
    env = {**os.environ, "GATEWAY_CONFIG": str(gw.config_path)}
    hand_to_service(gw.base)

    def check(*args):
        return subprocess.run(as_service([sys.executable, "-m", "gateway.cli", "check", *args]),
                              env=env, capture_output=True, text=True, timeout=120)

    def accounts(user):
        out = subprocess.run(["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=account"],
                             capture_output=True, text=True, check=True).stdout.split()
        return {a for a in out if a in ("test_lab", "test_other")}

    check("--fix")
    assert accounts("bob") == {"test_lab"} and accounts("alice") == {"test_lab", "test_other"}
    subprocess.run(["sacctmgr", "-i", "add", "user", "bob", "account=test_other"], check=True,
                   capture_output=True)
    drift = check()
    assert drift.returncode == 1
    assert "Slurm user 'bob' should not be associated with test_other" in drift.stderr
    fixed = check("--fix")
    assert "fixed: Slurm user 'bob' should not be associated with test_other" in fixed.stdout
    assert accounts("bob") == {"test_lab"}
    # Revoking the licence takes the association away at once.
    gw.ok("DELETE", "/licenses/test-lab/access", 200, json={"user": "bob"})
    assert accounts("bob") == set()


def test_the_gateway_serves_as_its_service_user_and_refuses_open_state(gw, server):
    port = server.rsplit(":", 1)[1]
    uid = pwd.getpwnam(SERVICE_USER).pw_uid
    serving = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if f"127.0.0.1:{port}".encode() in cmdline and b"serve" in cmdline:
            serving.append(int(re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M).group(2)))
    assert serving and set(serving) == {uid}, serving  # master and worker alike
    if gw.backend == "sqlite":
        os.chmod(gw.base / "gateway.db", 0o644)
        env = {**os.environ, "GATEWAY_CONFIG": str(gw.config_path)}
        out = subprocess.run(as_service([sys.executable, "-m", "gateway.cli", "serve"]), env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "is open to others (mode 644)" in out.stderr, out.stderr
        os.chmod(gw.base / "gateway.db", 0o600)


def test_an_upload_cannot_be_sent_through_a_folder_a_job_swapped_for_a_link(gw, monkeypatch):
    """A Member's job may write in the experiment, so it can swap a folder for a link
    between the gateway's path check and its write: the write must not follow it into
    the gateway's own state."""
    from gateway import data

    exp = gw.experiment()
    (exp / "raw").mkdir()
    checked = data.resolve_inside

    def then_swapped(base, relative, field, must_exist=True):
        target = checked(base, relative, field, must_exist)
        (exp / "raw").rename(exp / "raw-moved")
        (exp / "raw").symlink_to(gw.config.store_root)  # where the gateway may write
        return target

    monkeypatch.setattr(data, "resolve_inside", then_swapped)
    r = gw.client.put("/api/v1/projects/proj/experiments/exp/files/raw/blob.bin", data=b"poison",
                      headers=gw.headers())
    assert r.status_code == 400 and r.json["field"] == "path", r.get_data(as_text=True)
    assert not list(gw.config.store_root.rglob("blob.bin*"))
    assert not list((exp / "raw-moved").iterdir())
