"""LDAP login against the real slapd of scripts/dev-ldap, and jobs that run as the
person who logged in (their Unix uid from the directory)."""
from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import pytest

from gateway.auth.ldap import VerifiedTls
from gateway.auth.login import set_local_password
from gateway.models import Team, TeamMember, User


@pytest.fixture
def gw(gw):
    """The gateway without the fixture's local stand-ins for alice and bob: here the
    directory's own people log in."""
    User.delete().where(User.username.in_(["alice", "bob"])).execute()
    return gw


def login(gw, username, password, client=None):
    client = client or gw.app.test_client()
    return client, client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_ldap_login_creates_the_user_and_their_teams(gw):
    client, r = login(gw, "alice", "alice-pw")
    assert r.status_code == 200, r.json
    assert r.json["teams"] == ["all-staff", "xray-team"] and r.json["uid_number"] == 20001
    me = client.get("/api/v1/me").json  # the session cookie works
    assert me["username"] == "alice" and me["source"] == "ldap" and me["display_name"] == "Alice Adams"
    client.post("/api/v1/auth/logout")
    assert client.get("/api/v1/me").status_code == 401


def test_special_characters_in_a_password(gw):
    _, r = login(gw, "erin", "p@ss w*rd)(")
    assert r.status_code == 200 and r.json["uid_number"] == 20005


@pytest.mark.parametrize("username,password,field", [
    ("alice", "wrong", "password"),
    ("nobody", "whatever", "password"),  # the same answer as a wrong password
    ("*)(uid=*", "alice-pw", "password"),
    ("*", "alice-pw", "password"),
    ("alice", "", "password"),
    ("", "x", "username"),
    ("uid=alice,ou=people,dc=gateway,dc=test", "", "password"),
])
def test_bad_logins_give_a_clear_error_and_no_session(gw, username, password, field):
    client, r = login(gw, username, password)
    assert r.status_code == 401, r.json
    assert r.json["field"] == field and r.json["error"]
    assert client.get("/api/v1/me").status_code == 401
    assert not User.select().where(User.username == username).exists()


def test_unreachable_directory(gw):
    gw.ctx.config = replace(gw.config, ldap=replace(gw.config.ldap, url="ldap://127.0.0.1:9",
                                                    timeout_seconds=2))
    client, r = login(gw, "alice", "alice-pw")
    assert r.status_code == 503 and "unreachable" in r.json["error"]
    assert client.get("/api/v1/me").status_code == 401


# The dev certificate names IP:127.0.0.1 and DNS:localhost: a URL with either works,
# over LDAPS and StartTLS (Python >= 3.12 has no ssl.match_hostname; ldap3's own
# fallback ignored IP addresses, so every login by IP answered 503 there).
@pytest.mark.parametrize("url,tls", [
    ("ldaps://127.0.0.1:6636", "ldaps"),
    ("ldaps://localhost:6636", "ldaps"),
    ("ldap://127.0.0.1:3389", "starttls"),
    ("ldap://localhost:3389", "starttls"),
])
def test_tls_by_ip_address_and_by_name(gw, url, tls):
    gw.ctx.config = replace(gw.config, ldap=replace(gw.config.ldap, url=url, tls=tls))
    _, r = login(gw, "bob", "bob-pw")
    assert r.status_code == 200 and r.json["teams"] == ["all-staff", "xray-team"], r.json


def _handshake(ca_file, host_name):
    """A TLS handshake with the real slapd (LDAPS port) through the gateway's TLS,
    as if the URL had named ``host_name``."""
    conn = SimpleNamespace(socket=socket.create_connection(("127.0.0.1", 6636), timeout=5),
                           server=SimpleNamespace(host=host_name))
    try:
        VerifiedTls(ca_file).wrap_socket(conn, do_handshake=True)
        return conn.socket.version()
    finally:
        conn.socket.close()


def test_the_certificate_must_name_the_host_and_come_from_the_ca(gw):
    ca = gw.config.ldap.ca_file
    assert _handshake(ca, "127.0.0.1").startswith("TLSv1.")
    assert _handshake(ca, "localhost").startswith("TLSv1.")
    for other in ("127.0.0.2", "gateway.example.org"):
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch|match"):
            _handshake(ca, other)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer|self.signed"):
        _handshake("/etc/ssl/certs/ca-certificates.crt", "127.0.0.1")


def test_an_untrusted_certificate_refuses_the_login(gw):
    """End to end: a CA that did not sign the directory's certificate gives an honest
    503 and no session, never a login over an unverified connection."""
    gw.ctx.config = replace(gw.config, ldap=replace(
        gw.config.ldap, url="ldaps://127.0.0.1:6636", tls="ldaps",
        ca_file="/etc/ssl/certs/ca-certificates.crt"))
    client, r = login(gw, "bob", "bob-pw")
    assert r.status_code == 503 and "certificate" in r.json["error"].lower(), r.json
    assert client.get("/api/v1/me").status_code == 401


def test_teams_are_refreshed_at_each_login(gw):
    login(gw, "carol", "carol-pw")
    carol = User.get(User.username == "carol")
    stale = Team.create(name="old-ldap-group", source="ldap")
    local = Team.create(name="local-team", source="local")
    for t in (stale, local):
        TeamMember.create(team=t, user=carol)
    _, r = login(gw, "carol", "carol-pw")
    assert r.json["teams"] == ["all-staff", "bio-team", "local-team"]


def test_token_by_password_and_local_accounts(gw):
    r = gw.client.post("/api/v1/auth/token", json={"username": "dave", "password": "dave-pw"})
    assert r.status_code == 201
    assert gw.ok("GET", "/me", token=r.json["token"])["username"] == "dave"
    set_local_password(gw.admin, "local-admin-pw")
    _, r = login(gw, "admin", "local-admin-pw")
    assert r.status_code == 200 and r.json["source"] == "local"
    _, r = login(gw, "admin", "nope")
    assert r.status_code == 401


def test_jobs_run_as_the_person_and_their_files_are_theirs(gw, server, tmp_path):
    """Output files are the person's; the copy in Processed is the gateway's, readable
    by the experiment's Members' jobs through the folder's ACLs."""
    gw.environment("env", public=True)
    exp = gw.experiment()
    r = gw.client.post("/api/v1/auth/token", json={"username": "alice", "password": "alice-pw"})
    alice = r.json["token"]
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "member"})
    gw.ok("POST", "/licenses/test-lab/access", 201, json={"user": "alice", "role": "member"})
    gw.template(name="whoami", environment="env", public=True,
                script="id -un > $JOB_OUTPUT_DIR/who.txt; echo $HOME\n")
    job = gw.wait(gw.run("whoami", token=alice)["id"])
    assert job["status"] == "Completed" and job["unix_user"] == "alice"
    assert gw.sacct(job["slurm_job_id"], "User")["User"] == "alice"
    out = gw.ctx.job_paths(job["id"]).output_dir / "who.txt"
    assert out.read_text() == "alice\n" and out.stat().st_uid == 20001
    processed = exp / "Processed" / f"whoami-{job['id']}" / "who.txt"
    assert processed.read_text() == "alice\n" and processed.stat().st_uid != 20001
    read_back = subprocess.run(["setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "cat",
                                str(processed)], capture_output=True, text=True)
    assert read_back.stdout == "alice\n", read_back.stderr
    # The sbatch wrapper on a login node, with alice's own token: runs as alice too.
    script = tmp_path / "mine.sh"
    script.write_text("#!/bin/bash\nid -un\n")
    env = {**os.environ, "GATEWAY_URL": server, "GATEWAY_TOKEN": alice}
    sub = subprocess.run([sys.executable, "-m", "gateway.client.sbatch_wrapper", "--gw-license", "test-lab",
                          str(script)], env=env, capture_output=True, text=True, cwd="/tmp")
    assert sub.returncode == 0, sub.stderr
    wrapped = gw.wait(int(sub.stdout.split("gateway job ")[1].rstrip(")\n")))
    assert wrapped["status"] == "Completed" and wrapped["unix_user"] == "alice"
    assert "alice" in gw.ok("GET", f"/jobs/{wrapped['id']}/log", token=alice).get_data(as_text=True)
    # A local account without a Unix identity still runs as the job user.
    assert gw.run("whoami")["unix_user"] == "gwjob"
