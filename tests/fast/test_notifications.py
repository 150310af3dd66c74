"""Notifications on a FakeSlurm, with a real SMTP server and a real webhook receiver in
the test process: settings, deciding in the poller's transaction, sending exactly once
from the outbox, retries, refusals, and sponsors told about budgets. Through the real
Slurm and a killed worker: tests/integration/test_notifications_on_slurm.py."""
from dataclasses import replace
from datetime import timedelta

import pytest

from gateway import budgets, notifications
from gateway.db import utcnow
from gateway.models import Notification, User
from tests.notify_receivers import SmtpServer, WebhookReceiver


@pytest.fixture
def receivers(fake_gw_ready):
    gw = fake_gw_ready
    with SmtpServer() as smtp, WebhookReceiver() as hook:
        cfg = gw.ctx.config
        object.__setattr__(cfg, "notifications", replace(
            cfg.notifications, smtp_host="127.0.0.1", smtp_port=smtp.port, webhook_allow_loopback=True))
        User.update(email="admin@example.org").where(User.username == "admin").execute()
        gw.admin.email = "admin@example.org"
        yield gw, smtp, hook


def with_webhook(gw, hook, token=None, **more):
    r = gw.ok("PUT", "/me/notifications", token=token, json={"webhook_url": hook.url, **more})
    hook.secret = r["webhook_secret"]
    return r


def ends(gw, status="Completed", **run):
    job = gw.run("tpl", **run)
    sid = gw.ok("GET", f"/jobs/{job['id']}")["slurm_job_id"]
    gw.slurm.finish(sid, exit_code=0 if status == "Completed" else 3, elapsed=30)
    gw.tick()
    return job["id"]


def test_settings_and_their_secret_shown_once(fake_gw):
    assert fake_gw.ok("GET", "/me/notifications") == {
        "on_job_end": "none", "email": None, "webhook_url": None, "webhook_secret_set": False}
    r = fake_gw.ok("PUT", "/me/notifications", json={"on_job_end": "failure",
                                                      "webhook_url": "https://hooks.example.org/x"})
    assert len(r["webhook_secret"]) == 64 and r["on_job_end"] == "failure"
    shown = fake_gw.ok("GET", "/me/notifications")
    assert shown["webhook_secret_set"] is True and "webhook_secret" not in shown
    # The same URL again keeps its secret; every wrong field is named.
    again = fake_gw.ok("PUT", "/me/notifications", json={"webhook_url": "https://hooks.example.org/x"})
    assert "webhook_secret" not in again
    r = fake_gw.api("PUT", "/me/notifications", json={"on_job_end": "always", "email": "x@y",
                                                       "webhook_url": "file:///etc/passwd"})
    assert r.status_code == 400
    assert {p["field"] for p in r.json["problems"]} == {"on_job_end", "webhook_url", "email"}


def test_a_jobs_end_arrives_once_by_email_and_webhook(receivers):
    gw, smtp, hook = receivers
    with_webhook(gw, hook)
    job_id = ends(gw, notify="end")
    # Decided with the job's end, in the tick; nothing sent yet.
    assert Notification.select().count() == 2 and not smtp.messages and not hook.deliveries
    assert notifications.send_due(gw.ctx) == 2
    assert notifications.send_due(gw.ctx) == 0
    (mail,) = smtp.messages
    assert mail["Subject"] == f"Job {job_id} (tpl) Completed" and mail["To"] == "admin@example.org"
    assert f"http://127.0.0.1/jobs/{job_id}" in mail.get_payload()
    (headers, payload, signed) = hook.deliveries[0]
    assert len(hook.deliveries) == 1 and signed
    assert payload["event"] == "job.ended" and payload["job"]["id"] == job_id
    assert payload["job"]["status"] == "Completed"
    assert headers["X-Gateway-Delivery"] == f"job:{job_id}:ended:webhook"
    # Deciding again (a second poller, a re-read) makes nothing new.
    assert notifications.job_ended(gw.ctx.config, job_id) == 0
    assert notifications.send_due(gw.ctx) == 0 and len(smtp.messages) == 1


def test_a_run_with_a_wrong_notify_is_refused_by_name(fake_gw_ready):
    r = fake_gw_ready.api("POST", "/templates/tpl/runs", json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
        "notify": "sometimes"})
    assert r.status_code == 400 and r.json["field"] == "notify"


def test_only_failures_when_asked_and_nothing_by_default(receivers):
    gw, smtp, hook = receivers
    with_webhook(gw, hook, on_job_end="failure")
    ends(gw, "Completed")            # the default: only failures
    failed = ends(gw, "Failed")
    ends(gw, "Failed", notify="none")
    notifications.send_due(gw.ctx)
    assert [p["job"]["id"] for _, p, _ in hook.deliveries] == [failed] and len(smtp.messages) == 1


def test_a_crash_between_deciding_and_sending_loses_nothing(receivers):
    gw, smtp, hook = receivers
    with_webhook(gw, hook)
    job_id = ends(gw, notify="end")
    # The process that decided is gone; another sends, from the outbox.
    from gateway.context import Context

    fresh = Context.from_config(gw.ctx.config)
    assert notifications.send_due(fresh) == 2 and notifications.send_due(gw.ctx) == 0
    assert len(smtp.messages) == 1 and len(hook.deliveries) == 1
    assert hook.deliveries[0][1]["job"]["id"] == job_id


def test_a_claimed_message_is_not_sent_by_another_sender(receivers):
    gw, smtp, hook = receivers
    ends(gw, notify="end")
    Notification.update(claimed_until=utcnow() + timedelta(minutes=1)).execute()
    assert notifications.send_due(gw.ctx) == 0 and not smtp.messages
    Notification.update(claimed_until=utcnow() - timedelta(seconds=1)).execute()  # its sender died
    assert notifications.send_due(gw.ctx) == 1 and len(smtp.messages) == 1


def test_a_failing_webhook_is_retried_with_back_off(receivers):
    gw, smtp, hook = receivers
    with_webhook(gw, hook)
    ends(gw, notify="end")
    hook.fail = True
    assert notifications.send_due(gw.ctx) == 1  # the e-mail
    row = Notification.get(Notification.channel == "webhook")
    assert row.attempts == 1 and "503" in row.last_error and row.next_attempt_at > utcnow()
    assert notifications.send_due(gw.ctx) == 0  # not due yet
    hook.fail = False
    Notification.update(next_attempt_at=utcnow()).execute()
    assert notifications.send_due(gw.ctx) == 1 and len(hook.deliveries) == 1


def test_a_webhook_to_the_gateways_own_host_is_refused(receivers):
    gw, smtp, hook = receivers
    cfg = gw.ctx.config
    object.__setattr__(cfg, "notifications", replace(cfg.notifications, webhook_allow_loopback=False))
    with_webhook(gw, hook)
    ends(gw, notify="end")
    notifications.send_due(gw.ctx)
    row = Notification.get(Notification.channel == "webhook")
    assert row.sent_at is None and "127.0.0.1" in row.last_error and not hook.deliveries
    for url in ("http://169.254.169.254/latest/meta-data", "http://[::1]:80/"):
        with pytest.raises(RuntimeError, match="does not call"):
            notifications._refuse_own_host(url, allow_loopback=False)


def test_sweep_tasks_send_nothing_each(receivers):
    gw, smtp, _ = receivers
    gw.ok("PUT", "/me/notifications", json={"on_job_end": "end"})
    gw.template(name="swept", inputs=[{"name": "DC_N", "type": "integer", "default": 1}])
    made = gw.ok("POST", "/templates/swept/sweeps", 201, json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
        "inputs": {"DC_N": {"values": [1, 2, 3]}}})
    for sid in made["array_job_ids"]:
        for task in gw.slurm.tasks(sid):
            gw.slurm.finish(task.job_id, elapsed=5)
    gw.tick()
    assert Notification.select().count() == 0


def test_the_sponsor_is_told_once_per_level_and_period(receivers):
    gw, smtp, _ = receivers
    User.update(email="alice@example.org").where(User.username == "alice").execute()
    ctx = gw.ctx
    gw.slurm.use("test_budget", cpu_minutes=30)
    assert budgets.tell_sponsors(ctx) == 0   # 50 %: under the soft threshold
    gw.slurm.use("test_budget", cpu_minutes=20)
    assert budgets.tell_sponsors(ctx) == 1 and budgets.tell_sponsors(ctx) == 0
    gw.slurm.use("test_budget", cpu_minutes=15)
    assert budgets.tell_sponsors(ctx) == 1
    notifications.send_due(ctx)
    assert [m["Subject"] for m in smtp.messages] == ["Licence tiny-lab: the budget passed 83 % used",
                                                     "Licence tiny-lab: the budget is used up"]
    assert all(m["To"] == "alice@example.org" for m in smtp.messages)


def test_the_portal_settings_and_the_run_forms_choice(fake_gw_ready):
    from tests.fast.portal_client import get_page, post, session

    gw = fake_gw_ready
    client, token = session(gw, gw.admin)
    r = post(client, token, "/settings/notifications", {"on_job_end": "end", "webhook_url": "ftp://x"},
             expect=400)
    assert 'id="err-webhook_url"' in r.get_data(as_text=True)
    r = post(client, token, "/settings/notifications",
             {"on_job_end": "failure", "webhook_url": "https://hooks.example.org/me"}, expect=200)
    page = r.get_data(as_text=True)
    assert 'id="webhook-secret"' in page and page.count('id="notifications"') == 1
    assert "<title>API tokens and notifications" in page
    assert gw.ok("GET", "/me/notifications")["on_job_end"] == "failure"
    tpl_id = gw.ok("GET", "/templates/tpl")["id"]
    page = get_page(client, f"/templates/{tpl_id}/run")
    assert '<option value="failure" selected>only if it fails</option>' in page
    post(client, token, f"/templates/{tpl_id}/run", {
        "action": "submit", "experiment": "proj/exp", "machine_type": "small", "license": "test-lab",
        "software_disk_gb": "1", "time_limit_minutes": "10", "notify": "end"})
    assert gw.ok("GET", "/jobs")["jobs"][0]["notify"] == "end"
