"""Bad input gets a clear error naming the field, and changes nothing."""
from __future__ import annotations

import pytest


@pytest.fixture
def gw(fake_gw):
    """On FakeSlurm: what is checked here never needs a job to run."""
    return fake_gw


@pytest.fixture
def ready(gw):
    gw.environment()
    gw.experiment()
    gw.ok("PUT", "/projects/proj/experiments/exp/files/raw/a.txt", 201, data=b"x")
    tpl = gw.template(inputs=[{"name": "DC_N", "type": "integer", "default": 1},
                              {"name": "DC_P", "type": "path", "default": "raw/a.txt"}])
    return gw, tpl


def err(r, status, field):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    body = r.json
    assert body["field"] == field, body
    assert body["error"]
    return body


def test_auth_required(gw):
    r = gw.client.get("/api/v1/templates")
    assert r.status_code == 401 and r.json["error"]
    r = gw.client.get("/api/v1/templates", headers={"Authorization": "Bearer gw_forged"})
    assert r.status_code == 401 and "invalid" in r.json["error"]
    r = gw.client.get("/api/v1/templates", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


@pytest.mark.parametrize("change,field", [
    ({"name": "bad name!"}, "name"),
    ({"language": "perl"}, "language"),
    ({"script": ""}, "script"),
    ({"environment": "nope"}, "environment"),
    ({"environment_version": "9"}, "environment_version"),
    ({"inputs": [{"name": "N", "type": "integer"}]}, "inputs[0].name"),
    ({"inputs": [{"name": "DC_N", "type": "integer", "default": "ten"}]}, "inputs[0].default"),
    ({"inputs": [{"name": "DC_C", "type": "choice", "choices": ["a"], "default": "b"}]}, "inputs[0].default"),
    ({"inputs": [{"name": "DC_T", "type": "date"}]}, "inputs[0].type"),
    ({"outputs": [{"name": "RESULT"}]}, "outputs[0].name"),
    ({"python_executable": "python3"}, "python_executable"),
    ({"language": "python", "python_executable": "python3; rm -rf /"}, "python_executable"),
])
def test_template_validation(ready, change, field):
    gw, _ = ready
    body = {"name": "t2", "language": "bash", "script": "echo", "environment": "base", **change}
    err(gw.api("POST", "/templates", json=body), 400, field)
    assert [t["name"] for t in gw.ok("GET", "/templates")] == ["tpl"]


def test_duplicate_and_unknown(ready):
    gw, tpl = ready
    err(gw.api("POST", "/templates", json={"name": "tpl", "language": "bash", "script": "x",
                                           "environment": "base"}), 409, "name")
    err(gw.api("GET", "/templates/999"), 404, "template")
    err(gw.api("GET", "/jobs/999"), 404, "job")
    err(gw.api("POST", "/environments", json={"name": "base"}), 409, "name")
    r = gw.api("POST", "/templates", data="not json", content_type="application/json")
    assert r.status_code == 400 and r.json["error"]


@pytest.mark.parametrize("change,field", [
    ({"machine_type": "huge"}, "machine_type"),
    ({"license": "nobody"}, "license"),
    ({"inputs": {"DC_N": "many"}}, "inputs.DC_N"),
    ({"inputs": {"DC_OTHER": "1"}}, "inputs.DC_OTHER"),
    ({"inputs": {"DC_P": "../../../../etc/passwd"}}, "inputs.DC_P"),
    ({"inputs": {"DC_P": "/etc/passwd"}}, "inputs.DC_P"),
    ({"inputs": {"DC_P": "raw/missing.txt"}}, "inputs.DC_P"),
    ({"time_limit_minutes": 4321}, "time_limit_minutes"),
    ({"time_limit_minutes": 0}, "time_limit_minutes"),
    ({"software_disk_gb": -1}, "software_disk_gb"),
    ({"version": 7}, "version"),
    ({"experiment": "nope"}, "experiment"),
])
def test_run_validation_submits_nothing(ready, change, field):
    gw, tpl = ready
    body = {"project": "proj", "experiment": "exp", "machine_type": "small",
            "license": "test-lab", "inputs": {}, **change}
    status = 404 if field == "experiment" else 400
    err(gw.api("POST", f"/templates/{tpl['id']}/runs", json=body), status, field)
    assert gw.ok("GET", "/jobs")["total"] == 0


def test_symlink_escape_is_refused(ready):
    gw, tpl = ready
    exp = gw.config.data_root / "projects" / "proj" / "exp"
    (exp / "link").symlink_to("/etc")
    body = {"project": "proj", "experiment": "exp", "machine_type": "small",
            "license": "test-lab", "inputs": {"DC_P": "link/passwd"}}
    err(gw.api("POST", f"/templates/{tpl['id']}/runs", json=body), 400, "inputs.DC_P")
    err(gw.api("GET", "/projects/proj/experiments/exp/files?path=link"), 400, "path")
    err(gw.api("PUT", "/projects/proj/experiments/exp/files/../../x.txt", data=b"x"), 400, "path")
    listing = gw.ok("GET", "/projects/proj/experiments/exp/files")
    assert "link" not in [e["name"] for e in listing]


def test_preview_shows_the_script_and_submits_nothing(ready):
    gw, tpl = ready
    body = {"project": "proj", "experiment": "exp", "machine_type": "gpu1", "license": "test-lab",
            "inputs": {"DC_N": 5}, "time_limit_minutes": 4320}
    script = gw.ok("POST", f"/templates/{tpl['id']}/preview", json=body)["script"]
    assert "#SBATCH --gres=gpu:testgpu:1" in script and "#SBATCH --time=4320" in script
    assert "export DC_N=5" in script
    assert gw.ok("GET", "/jobs")["total"] == 0


def test_other_users_cannot_see_private_things(ready):
    gw, tpl = ready
    err(gw.api("GET", f"/templates/{tpl['id']}", token=gw.alice_token), 404, "template")
    err(gw.api("GET", "/projects/proj/experiments/exp/files", token=gw.alice_token), 404, "experiment")
    assert gw.ok("GET", "/templates", token=gw.alice_token) == []


def test_api_lists_settings(gw):
    mts = gw.ok("GET", "/machine-types")
    gpu = next(m for m in mts if m["name"] == "gpu2")
    assert gpu == {"name": "gpu2", "cpus": 2, "memory_gb": 1.0, "gpu_type": "testgpu",
                   "gpus": 2, "partition": "gpu"}
    lics = gw.ok("GET", "/licenses")
    assert {"name": "test-lab", "slurm_account": "test_lab", "cpu_hours": 0.0,
            "gpu_hours": 0.0}.items() <= lics[0].items()
