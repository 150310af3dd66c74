import pytest

from gateway.config import from_dict
from gateway.errors import ConfigError

BASE = {
    "machine_types": [{"name": "m", "partition": "cpu", "cpus": 2, "memory_gb": 4}],
    "licenses": [{"name": "lab", "slurm_account": "lab_acct"}],
}


def test_valid_config():
    cfg = from_dict(BASE)
    mt = cfg.machine_type("m")
    assert mt.memory_mb == 4096 and mt.gres is None
    assert cfg.license("lab").slurm_account == "lab_acct"


@pytest.mark.parametrize("change,key", [
    ({"machine_types": [{"name": "m", "cpus": 1, "memory_gb": 1}]}, "machine_types[m].partition"),
    ({"machine_types": [{"name": "m", "partition": "cpu", "cpus": 0, "memory_gb": 1}]},
     "machine_types[m].cpus"),
    ({"machine_types": [{"name": "m", "partition": "cpu", "cpus": "2", "memory_gb": 1}]},
     "machine_types[m].cpus"),
    ({"machine_types": [{"name": "m", "partition": "cpu", "cpus": 1, "memory_gb": 1, "gpu_type": "a100"}]},
     "machine_types[m].gpus"),
    ({"machine_types": [{"name": "m", "partition": "cpu", "cpus": 1, "memory_gb": 1, "colour": 1}]},
     "machine_types[m]"),
    ({"licenses": [{"name": "x", "slurm_account": "bad account"}]}, "licenses[x].slurm_account"),
    ({"slurm": {"max_time_minutes": 5000}}, "slurm.max_time_minutes"),
    ({"slurm": {"submit_via": "ssh"}}, "slurm.submit_via"),
    ({"slurm": {"typo": 1}}, "slurm"),
])
def test_errors_name_the_key(change, key):
    with pytest.raises(ConfigError) as e:
        from_dict({**BASE, **change})
    assert e.value.key == key


def test_gpu_gres():
    cfg = from_dict({**BASE, "machine_types": [
        {"name": "g", "partition": "gpu", "cpus": 1, "memory_gb": 1, "gpu_type": "a100", "gpus": 2}]})
    assert cfg.machine_type("g").gres == "gpu:a100:2"


def test_secret_file_checks(tmp_path):
    with pytest.raises(ConfigError) as e:
        from_dict({"gateway": {"secret_key_file": str(tmp_path / "none")}})
    assert "does not exist" in str(e.value)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError) as e:
        from_dict({"gateway": {"secret_key_file": str(empty)}})
    assert "empty" in str(e.value)


def test_example_configs_load(monkeypatch):
    """etc/gateway.toml (every key documented) and the dev config are valid as shipped."""
    from pathlib import Path

    from gateway.config import load

    monkeypatch.setenv("GATEWAY_SECRET_KEY", "test")
    etc = Path(__file__).resolve().parents[2] / "etc"
    for name in ("gateway.toml", "dev-gateway.toml"):
        try:
            cfg = load(etc / name)
        except ConfigError as e:
            assert e.key == "ldap.ca_file", e  # the example's CA path may not exist here
            continue
        assert cfg.machine_types and cfg.licenses
