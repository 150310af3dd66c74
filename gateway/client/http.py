"""A small REST client for the gateway API (token from env or ~/.config/slurm-gateway)."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import ClientError

CONFIG_DIR = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
CONFIG_PATH = CONFIG_DIR / "slurm-gateway" / "client.toml"


def client_settings() -> tuple[str, str]:
    """(url, token): $GATEWAY_URL/$GATEWAY_TOKEN win over the client config file."""
    url, token = os.environ.get("GATEWAY_URL", ""), os.environ.get("GATEWAY_TOKEN", "")
    if (not url or not token) and CONFIG_PATH.is_file():
        raw = tomllib.loads(CONFIG_PATH.read_text())
        url = url or raw.get("url", "")
        token = token or raw.get("token", "")
    if not url or not token:
        raise ClientError(f"no gateway configured: set GATEWAY_URL and GATEWAY_TOKEN or run "
                          f"'gateway login' (writes {CONFIG_PATH})")
    return url.rstrip("/"), token


def save_settings(url: str, token: str) -> Path:
    CONFIG_PATH.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(CONFIG_PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f'url = "{url}"\ntoken = "{token}"\n')
    return CONFIG_PATH


def token_for_password(url: str, username: str, password: str, name: str) -> str:
    """Exchange a username and password (LDAP or local) for a new API token."""
    try:
        r = requests.post(url.rstrip("/") + "/api/v1/auth/token", timeout=30,
                          json={"username": username, "password": password, "name": name})
    except requests.ConnectionError as e:
        raise ClientError(f"cannot reach the gateway at {url}: {e}") from e
    if r.status_code != 201:
        raise api_error(r)
    return r.json()["token"]


def api_error(r: requests.Response) -> ClientError:
    """The API's error as the client's: its field and message, every one when the API
    found several problems at once (a run with three wrong inputs)."""
    try:
        err = r.json()
    except ValueError:
        return ClientError(f"HTTP {r.status_code}: {r.text[:200]}", None, r.status_code)
    problems = err.get("problems") or []
    if len(problems) > 1:
        lines = "\n".join(f"{p['field']}: {p['error']}" if p.get("field") else p["error"] for p in problems)
        return ClientError(f"{len(problems)} problems:\n{lines}", None, r.status_code)
    return ClientError(err.get("error", r.text), err.get("field"), r.status_code)


class ApiClient:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60.0):
        if url is None or token is None:
            url, token = client_settings()
        self.base = url.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        # A kept-alive connection the server has just closed resets on reuse; reads are
        # safe to retry. POSTs are not retried: a run must never be submitted twice.
        retry = Retry(total=3, connect=3, read=2, backoff_factor=0.2, allowed_methods={"GET"},
                      raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            r = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except requests.ConnectionError as e:
            raise ClientError(f"cannot reach the gateway at {self.base}: {e}") from e
        if r.status_code >= 400:
            raise api_error(r)
        return r

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, payload: dict | None = None):
        return self.request("POST", path, json=payload or {}).json()
