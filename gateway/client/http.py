"""A small REST client for the gateway API (token from env or ~/.config/slurm-gateway).

Built on the standard library's http.client and json only: the client starts as a new
process for every status check and every gateway-sbatch, and requests (with urllib3
and charset detection) took longer to import than the rest of the command's work.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import time
from urllib.parse import quote, urlencode, urlsplit

from ..errors import ClientError

CONFIG_DIR = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
CONFIG_PATH = os.path.join(CONFIG_DIR, "slurm-gateway", "client.toml")

# Reads are tried again when the connection breaks (a kept-alive connection the server
# has just closed resets on reuse); a gateway that refuses connections (restarting) is
# tried again for any request, as nothing was sent. A request that may have reached the
# gateway is never sent twice unless it is a read: a run must never be submitted twice.
READ_RETRIES = 2
CONNECT_RETRIES = 3
BACKOFF_SECONDS = 0.2
IDEMPOTENT = frozenset({"GET", "HEAD"})
# Said when a request that changes something broke after it was sent.
_MAYBE_DONE = (" (it may have reached the gateway all the same: look, e.g. `gateway jobs`, "
               "before trying again)")

# The lines `gateway login` writes (`key = "value"`); anything else is read by tomllib.
_SIMPLE_LINE = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*"([^"\\\x00-\x1f\x7f]*)"\s*(?:#.*)?')


def read_client_config(text: str) -> dict:
    """The client config file's keys. The file `gateway login` writes is read directly;
    any other TOML goes through tomllib (whose import alone costs more than the rest
    of a `gateway status`)."""
    values: dict = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        simple = _SIMPLE_LINE.fullmatch(line)
        if simple is None or simple[1] in values:
            import tomllib

            return tomllib.loads(text)
        values[simple[1]] = simple[2]
    return values


def client_settings() -> tuple[str, str]:
    """(url, token): $GATEWAY_URL/$GATEWAY_TOKEN win over the client config file."""
    url, token = os.environ.get("GATEWAY_URL", ""), os.environ.get("GATEWAY_TOKEN", "")
    if (not url or not token) and os.path.isfile(CONFIG_PATH):
        with open(CONFIG_PATH, encoding="utf-8") as f:
            text = f.read()
        try:
            raw = read_client_config(text)
        except ValueError as e:  # tomllib.TOMLDecodeError
            raise ClientError(f"{CONFIG_PATH}: {e}") from None
        url = url or raw.get("url", "")
        token = token or raw.get("token", "")
    if not url or not token:
        raise ClientError(f"no gateway configured: set GATEWAY_URL and GATEWAY_TOKEN or run "
                          f"'gateway login' (writes {CONFIG_PATH})")
    return url.rstrip("/"), token


def save_settings(url: str, token: str) -> str:
    os.makedirs(os.path.dirname(CONFIG_PATH), exist_ok=True)
    fd = os.open(CONFIG_PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f'url = "{url}"\ntoken = "{token}"\n')
    return CONFIG_PATH


class Response:
    """One answer of the API: status, headers (looked up regardless of case), body."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers, content: bytes):
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.content)


def api_error(r) -> ClientError:
    """The API's error as the client's: its field and message, every one when the API
    found several problems at once (a run with three wrong inputs)."""
    try:
        err = r.json()
    except ValueError:
        return ClientError(f"HTTP {r.status_code}: {r.text[:200]}", None, r.status_code)
    if not isinstance(err, dict):
        return ClientError(f"HTTP {r.status_code}: {r.text[:200]}", None, r.status_code)
    problems = err.get("problems") or []
    if len(problems) > 1:
        lines = "\n".join(f"{p['field']}: {p['error']}" if p.get("field") else p["error"] for p in problems)
        return ClientError(f"{len(problems)} problems:\n{lines}", None, r.status_code)
    return ClientError(err.get("error", r.text), err.get("field"), r.status_code)


def _tls_context():
    """Certificates checked against the system's store (or $SSL_CERT_FILE, which
    OpenSSL reads; $REQUESTS_CA_BUNDLE too, as the client honoured it before)."""
    import ssl

    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
    return ssl.create_default_context(cafile=cafile)


def _dropped(sock) -> bool:
    """True when the server has closed a kept-alive connection (it reads as ready)."""
    import select

    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class ApiClient:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60.0):
        if url is None or token is None:
            url, token = client_settings()
        url = url.rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"{url!r} is not a gateway URL: give it as https://host[:port]")
        try:
            self._port = parts.port
        except ValueError:
            raise ClientError(f"{url!r} is not a gateway URL: its port is not a number") from None
        self.base = url + "/api/v1"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._prefix = parts.path + "/api/v1"
        self._headers = {"Accept": "application/json", "User-Agent": "gateway-client"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None and _dropped(conn.sock):
            conn.close()
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                                   context=_tls_context())
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._conn = conn
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _unreachable(self, e: BaseException) -> ClientError:
        return ClientError(f"cannot reach the gateway at {self.base}: {e}")

    def request(self, method: str, path: str, params: dict | None = None,
                json: dict | None = None) -> Response:
        """Send one request to ``path`` (under /api/v1; quoted here, so a file name is given
        as it is) with ``params`` as its query; the answer, or ClientError (the API's own
        error, or why the gateway could not be reached)."""
        target = quote(self._prefix + path, safe="/")
        if params:
            target += "?" + urlencode(params)
        headers = dict(self._headers)
        body = None
        if json is not None:
            body = _json_dumps(json).encode()
            headers["Content-Type"] = "application/json"
        connect_tries = read_tries = 0
        while True:
            conn = self._connection()
            if conn.sock is None:
                try:
                    conn.connect()
                except (ConnectionRefusedError, ConnectionResetError) as e:
                    self._close()
                    if connect_tries >= CONNECT_RETRIES:
                        raise self._unreachable(e) from None
                    connect_tries += 1
                    time.sleep(BACKOFF_SECONDS * 2 ** (connect_tries - 1))
                    continue
                except TimeoutError:
                    self._close()
                    raise ClientError(f"cannot reach the gateway at {self.base}: no answer within "
                                      f"{self.timeout:g} s") from None
                except OSError as e:  # unknown host, certificate refused, no route
                    self._close()
                    raise self._unreachable(e) from None
            try:
                conn.request(method, target, body=body, headers=headers)
                answer = conn.getresponse()
                r = Response(answer.status, answer.headers, answer.read())
            except TimeoutError:
                self._close()
                raise ClientError(f"the gateway at {self.base} did not answer within "
                                  f"{self.timeout:g} s{_MAYBE_DONE if method not in IDEMPOTENT else ''}"
                                  ) from None
            except (OSError, http.client.HTTPException) as e:
                self._close()
                if method in IDEMPOTENT and read_tries < READ_RETRIES:
                    read_tries += 1
                    if read_tries > 1:
                        time.sleep(BACKOFF_SECONDS * 2 ** (read_tries - 1))
                    continue
                why = self._unreachable(e)
                raise (why if method in IDEMPOTENT else ClientError(f"{why}{_MAYBE_DONE}")) from None
            break
        if r.status_code >= 400:
            raise api_error(r)
        if r.status_code >= 300:
            raise ClientError(f"the gateway at {self.base} answered HTTP {r.status_code}, a redirect "
                              f"to {r.headers.get('Location')}: set the gateway URL to where it "
                              f"points", None, r.status_code)
        return r

    def get(self, path: str, params: dict | None = None):
        return self._json(self.request("GET", path, params=params))

    def post(self, path: str, payload: dict | None = None):
        return self._json(self.request("POST", path, json=payload or {}))

    def put(self, path: str, payload: dict):
        return self._json(self.request("PUT", path, json=payload))

    def _json(self, r: Response):
        try:
            return r.json()
        except ValueError:  # a proxy's login page, say, in front of the gateway
            raise ClientError(f"the gateway at {self.base} did not answer in JSON: "
                              f"HTTP {r.status_code}: {r.text[:200]}", None, r.status_code) from None


_json_dumps = json.dumps  # `request` has a parameter named json


def token_for_password(url: str, username: str, password: str, name: str) -> str:
    """Exchange a username and password (LDAP or local) for a new API token."""
    client = ApiClient(url, "", timeout=30.0)
    return client.post("/auth/token", {"username": username, "password": password, "name": name})["token"]
