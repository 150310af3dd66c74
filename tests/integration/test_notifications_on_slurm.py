"""A real job's end told exactly once, by e-mail (a real SMTP server in the test) and by
webhook (signature checked), when the worker that saw it end is killed at once and
another takes over."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from gateway.models import Job, Notification, PollerLease, User
from tests.conftest import as_service, hand_to_service
from tests.notify_receivers import SmtpServer, WebhookReceiver


def start_worker(config_path) -> subprocess.Popen:
    return subprocess.Popen(as_service([sys.executable, "-m", "gateway.cli", "worker"]),
                            env={**os.environ, "GATEWAY_CONFIG": str(config_path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for(what, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_jobs_end_is_told_once_though_its_worker_is_killed(gw_sqlite):
    gw = gw_sqlite
    gw.environment()
    gw.experiment()
    tpl = gw.template(script="echo done\nexit 3\n")
    User.update(email="admin@example.org").where(User.username == "admin").execute()
    with SmtpServer() as smtp, WebhookReceiver() as hook:
        config_path = gw.base / "gateway-notify.toml"
        config_path.write_text(gw.config_path.read_text() + f"""
[notifications]
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
from_address = "slurm-gateway@example.org"
webhook_allow_loopback = true
""")
        os.chmod(config_path, 0o600)
        hand_to_service(gw.base)
        hook.secret = gw.ok("PUT", "/me/notifications", json={"webhook_url": hook.url,
                                                               "on_job_end": "failure"})["webhook_secret"]
        job = gw.run(tpl["id"])
        assert job["notify"] == "failure"
        first = start_worker(config_path)
        try:
            # Killed the moment the job's end is written (with its messages, in one commit).
            wait_for("the job to end", lambda: Job.get_by_id(job["id"]).finalized, timeout=90)
            os.killpg(first.pid, signal.SIGKILL)
        finally:
            first.wait(10)
        assert Job.get_by_id(job["id"]).status == "Failed"
        # Its messages were decided with the end and not sent: the notifier's first round
        # comes 5 s after a worker starts, its first tick within a second.
        assert Notification.select().where(Notification.sent_at.is_null()).count() == 2
        assert not smtp.messages and not hook.deliveries
        # Its poller lease would expire in 10 s; the test lets it go at once.
        PollerLease.delete().execute()
        second = start_worker(config_path)
        try:
            wait_for("the e-mail and the webhook", lambda: smtp.messages and hook.deliveries)
            wait_for("both marked sent", lambda: Notification.select().where(
                Notification.sent_at.is_null()).count() == 0, timeout=20)
            time.sleep(6)  # another round of the notifier: nothing more goes out
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(10)
    assert len(smtp.messages) == 1 and len(hook.deliveries) == 1
    mail = smtp.messages[0]
    assert mail["Subject"] == f"Job {job['id']} (tpl) Failed" and f"/jobs/{job['id']}" in mail.get_payload()
    headers, payload, signed = hook.deliveries[0]
    assert signed and payload["job"]["id"] == job["id"] and payload["job"]["status"] == "Failed"
    assert payload["job"]["exit_code"] == 3
