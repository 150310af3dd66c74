import os

import pytest

from gateway.config import from_dict
from gateway.errors import ConfigError

BASE = {
    "gateway": {"secret_key": "unit-test-secret-0123456789"},
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


@pytest.mark.parametrize("gateway,key,words", [
    ({}, "gateway.secret_key_file", "no session secret"),
    ({"secret_keyfile": "/etc/x"}, "gateway", "unknown keys ['secret_keyfile']"),
    ({"secret_key": "short"}, "gateway.secret_key", "shorter than 16"),
])
def test_no_built_in_secret(gateway, key, words, monkeypatch):
    """A misspelt key used to fall back silently to a built-in secret that signed
    session cookies: every way of ending up without a real secret stops the start."""
    monkeypatch.delenv("GATEWAY_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError) as e:
        from_dict({**BASE, "gateway": gateway})
    assert e.value.key == key and words in str(e.value)


def test_a_secret_others_can_read_is_refused(tmp_path, monkeypatch):
    from gateway.config import load

    monkeypatch.delenv("GATEWAY_SECRET_KEY", raising=False)
    secret = tmp_path / "secret_key"
    secret.write_text("s" * 32)
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError) as e:
        from_dict({**BASE, "gateway": {"secret_key_file": str(secret)}})
    assert e.value.key == "gateway.secret_key_file" and "chmod 600" in str(e.value)
    os.chmod(secret, 0o600)
    assert from_dict({**BASE, "gateway": {"secret_key_file": str(secret)}}).secret_key == "s" * 32
    # An inline secret makes the config file itself a secret.
    conf = tmp_path / "gateway.toml"
    conf.write_text('[gateway]\nsecret_key = "inline-secret-0123456789"\n')
    os.chmod(conf, 0o644)
    with pytest.raises(ConfigError) as e:
        load(conf)
    assert e.value.key == "gateway.secret_key"
    os.chmod(conf, 0o600)
    assert load(conf).secret_key == "inline-secret-0123456789"


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

    monkeypatch.setenv("GATEWAY_SECRET_KEY", "test-secret-0123456789")
    etc = Path(__file__).resolve().parents[2] / "etc"
    for name in ("gateway.toml", "dev-gateway.toml"):
        try:
            cfg = load(etc / name)
        except ConfigError as e:
            assert e.key == "ldap.ca_file", e  # the example's CA path may not exist here
            continue
        assert cfg.machine_types and cfg.licenses
