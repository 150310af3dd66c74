import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from gateway.config import ConfigFile, from_dict, load
from gateway.errors import ConfigError

ETC = Path(__file__).resolve().parents[2] / "etc"
BASE = {
    "gateway": {"secret_key": "unit-test-secret-0123456789"},
    "machine_types": [{"name": "m", "partition": "cpu", "cpus": 2, "memory_gb": 4}],
    "licenses": [{"name": "lab", "slurm_account": "lab_acct"}],
}


@pytest.fixture(autouse=True)
def no_secret_from_the_environment(monkeypatch):
    monkeypatch.delenv("GATEWAY_SECRET_KEY", raising=False)


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
     "machine_types[m].colour"),
    ({"machine_types": [{"name": "m", "partition": "cpu", "cpus": 1, "memory_gb": 1}] * 2},
     "machine_types[m]"),
    ({"licenses": [{"name": "x", "slurm_account": "bad account"}]}, "licenses[x].slurm_account"),
    ({"licenses": [{"name": "x", "slurm_account": "x", "members": "bob"}]}, "licenses[x].members"),
    ({"licenses": [{"slurm_account": "x"}]}, "licenses[0].name"),
    ({"slurm": {"max_time_minutes": 5000}}, "slurm.max_time_minutes"),
    ({"slurm": {"submit_via": "ssh"}}, "slurm.submit_via"),
    ({"slurm": {"typo": 1}}, "slurm.typo"),
    ({"slurm": []}, "slurm"),
    ({"ldap": {"url": "ldap://x"}}, "ldap.user_base"),
    ({"slurmm": {}}, "slurmm"),
])
def test_errors_name_the_key(change, key):
    with pytest.raises(ConfigError) as e:
        from_dict({**BASE, **change})
    assert e.value.key == key


def test_a_misspelt_key_is_refused_with_the_file_and_the_closest_key(tmp_path):
    conf = tmp_path / "gateway.toml"
    conf.write_text('[gateway]\nsecret_key = "unit-test-secret-0123456789"\n'
                    '[slurm]\npoll_interval_secnds = 5\n')
    os.chmod(conf, 0o600)
    with pytest.raises(ConfigError) as e:
        load(conf)
    assert e.value.key == "slurm.poll_interval_secnds"
    assert str(e.value) == (f"{conf}: slurm.poll_interval_secnds: unknown key; "
                            f"did you mean slurm.poll_interval_seconds?")


@pytest.mark.parametrize("section,value,expected", [
    ("slurm", {"poll_interval_seconds": "10"}, "expected a number, got a string ('10')"),
    ("slurm", {"submit_as_user": 1}, "expected a boolean (true or false), got an integer (1)"),
    ("slurm", {"default_time_minutes": 1.5}, "expected an integer, got a number (1.5)"),
    ("slurm", {"default_time_minutes": True}, "expected an integer, got a boolean (True)"),
    ("gateway", {"max_upload_mb": "512"}, "expected an integer, got a string ('512')"),
    ("ldap", {"timeout_seconds": [5]}, "expected a number, got a list"),
])
def test_a_value_of_the_wrong_type_is_refused(section, value, expected):
    raw = {**BASE, section: {**BASE.get(section, {}), **value}}
    with pytest.raises(ConfigError) as e:
        from_dict(raw)
    assert e.value.key == f"{section}.{next(iter(value))}" and e.value.message == expected


def test_numbers_take_integers():
    cfg = from_dict({**BASE, "slurm": {"poll_interval_seconds": 3}})
    assert cfg.slurm.poll_interval_seconds == 3.0 and isinstance(cfg.slurm.poll_interval_seconds, float)


def test_a_missing_required_value_is_refused():
    with pytest.raises(ConfigError) as e:
        from_dict({**BASE, "machine_types": [{"name": "m", "partition": "cpu", "cpus": 1}]})
    assert e.value.key == "machine_types[m].memory_gb"
    assert str(e.value) == "machine_types[m].memory_gb: is required: expected a number"


def test_gpu_gres():
    cfg = from_dict({**BASE, "machine_types": [
        {"name": "g", "partition": "gpu", "cpus": 1, "memory_gb": 1, "gpu_type": "a100", "gpus": 2}]})
    assert cfg.machine_type("g").gres == "gpu:a100:2"


@pytest.mark.parametrize("gateway,key,words", [
    ({}, "gateway.secret_key_file", "no session secret"),
    ({"secret_keyfile": "/etc/x"}, "gateway.secret_keyfile", "did you mean gateway.secret_key_file?"),
    ({"secret_key": "short"}, "gateway.secret_key", "shorter than 16"),
    ({"secret_key": "s" * 20, "secret_key_file": "/etc/x"}, "gateway.secret_key", "not both"),
])
def test_no_built_in_secret(gateway, key, words):
    """A misspelt key used to fall back silently to a built-in secret that signed
    session cookies: every way of ending up without a real secret stops the start."""
    with pytest.raises(ConfigError) as e:
        from_dict({**BASE, "gateway": gateway})
    assert e.value.key == key and words in str(e.value)


def test_a_secret_others_can_read_is_refused(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("s" * 32)
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError) as e:
        from_dict({**BASE, "gateway": {"secret_key_file": str(secret)}})
    assert e.value.key == "gateway.secret_key_file" and "chmod 600" in str(e.value)
    os.chmod(secret, 0o640)  # the group counts as others too
    with pytest.raises(ConfigError):
        from_dict({**BASE, "gateway": {"secret_key_file": str(secret)}})
    os.chmod(secret, 0o600)
    assert from_dict({**BASE, "gateway": {"secret_key_file": str(secret)}}).secret_key == "s" * 32
    # An inline secret makes the config file itself a secret.
    conf = tmp_path / "gateway.toml"
    conf.write_text('[gateway]\nsecret_key = "inline-secret-0123456789"\n')
    os.chmod(conf, 0o644)
    with pytest.raises(ConfigError) as e:
        load(conf)
    assert e.value.key == "gateway.secret_key" and str(e.value).startswith(f"{conf}: ")
    os.chmod(conf, 0o600)
    assert load(conf).secret_key == "inline-secret-0123456789"


def test_secret_file_checks(tmp_path):
    with pytest.raises(ConfigError) as e:
        from_dict({"gateway": {"secret_key_file": str(tmp_path / "none")}})
    assert "does not exist" in str(e.value)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    os.chmod(empty, 0o600)
    with pytest.raises(ConfigError) as e:
        from_dict({"gateway": {"secret_key_file": str(empty)}})
    assert "empty" in str(e.value)
    # A relative secret_key_file is found beside the config file.
    (tmp_path / "secret").write_text("r" * 20)
    os.chmod(tmp_path / "secret", 0o600)
    conf = tmp_path / "gateway.toml"
    conf.write_text('[gateway]\nsecret_key_file = "secret"\n')
    assert load(conf).secret_key == "r" * 20


def test_a_file_that_is_not_toml_is_named(tmp_path):
    conf = tmp_path / "gateway.toml"
    conf.write_text("[slurm\n")
    with pytest.raises(ConfigError) as e:
        load(conf)
    assert str(e.value).startswith(f"{conf}: not valid TOML")
    with pytest.raises(ConfigError) as e:
        load(tmp_path / "missing.toml")
    assert str(e.value).startswith(f"{tmp_path / 'missing.toml'}: ")


def test_example_configs_load(monkeypatch, tmp_path):
    """etc/gateway.toml and the dev config are valid as shipped (with a secret given by
    the environment, and a CA file that exists here)."""
    monkeypatch.setenv("GATEWAY_SECRET_KEY", "test-secret-0123456789")
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    for name in ("gateway.toml", "dev-gateway.toml"):
        raw = tomllib.loads((ETC / name).read_text())
        raw["ldap"]["ca_file"] = str(ca)
        cfg = from_dict(raw, base=ETC, source=str(ETC / name))
        assert cfg.machine_types and cfg.licenses


def _keys_the_code_knows() -> set[str]:
    """Every ``section.key`` a config file may hold, from the dataclasses."""
    hints = typing.get_type_hints(ConfigFile)
    out = set()
    for section in fields(ConfigFile):
        typ = hints[section.name]
        cls = typing.get_args(typ)[0] if typing.get_origin(typ) is tuple else typ
        assert is_dataclass(cls)
        out |= _dataclass_keys(section.name, cls)
    return out


def _dataclass_keys(prefix: str, cls) -> set[str]:
    """``prefix.key`` for each field; a table within (``[licenses.budget]``) by its keys."""
    hints = typing.get_type_hints(cls)
    out = set()
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            out |= _dataclass_keys(f"{prefix}.{f.name}", hints[f.name])
        else:
            out.add(f"{prefix}.{f.name}")
    return out


def _keys_documented(text: str) -> set[str]:
    """Every ``section.key`` etc/gateway.toml shows, set or as a commented-out line
    (``# key = ...``); prose comments do not count."""
    out, section = set(), ""
    for line in text.splitlines():
        header = re.fullmatch(r"(?:# )?\[\[?([a-z_.]+)\]\]?\s*", line)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"(?:# )?([a-z_]+) = ", line)
        if key:
            assert section, f"{line!r} is outside any section"
            out.add(f"{section}.{key.group(1)}")
    return out


def test_the_example_config_documents_every_key_and_only_known_keys():
    documented = _keys_documented((ETC / "gateway.toml").read_text())
    known = _keys_the_code_knows()
    assert known - documented == set(), "keys the code reads that etc/gateway.toml does not show"
    assert documented - known == set(), "keys etc/gateway.toml shows that the code does not read"


@pytest.mark.parametrize("command", [["check"], ["serve"], ["worker", "--once"]])
def test_the_commands_stop_on_a_bad_config_with_its_message(command):
    """serve, worker and check print the file, the key and the hint, and exit non-zero
    without a traceback. They refuse root, so as root this runs as nobody."""
    as_nobody = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to drop root")
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    folder = Path(tempfile.mkdtemp())
    try:
        os.chmod(folder, 0o755)
        conf = folder / "gateway.toml"
        conf.write_text('[gateway]\nsecret_key_file = "secret"\n[slurm]\npoll_interval_secnds = 5\n')
        os.chmod(conf, 0o644)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        cmd = [*as_nobody, sys.executable, "-m", "gateway.cli", *command, "--config", str(conf)]
        out = subprocess.run(cmd, env=env, cwd=Path(__file__).resolve().parents[2],
                             capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(folder)
    assert out.returncode != 0
    assert (f"{conf}: slurm.poll_interval_secnds: unknown key; did you mean slurm.poll_interval_seconds?"
            in out.stderr), out.stderr
    assert "Traceback" not in out.stderr
