"""LDAP login with ldap3: service bind, escaped search, re-bind as the person.

An empty password is refused before the directory is asked: many servers accept an
unauthenticated simple bind with any DN and no password, which must never count as a
login. Groups found for the person become teams, refreshed at every login.
"""
from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

from ..config import LdapSettings
from ..errors import DirectoryUnavailable, Unauthorized

logger = logging.getLogger(__name__)
BAD_CREDENTIALS = "invalid username or password"
# One field for an unknown person and a wrong password alike: the answer tells nothing
# about which it was.
CREDENTIALS_FIELD = "password"


@dataclass
class LdapPerson:
    username: str
    dn: str
    display_name: str = ""
    email: str = ""
    uid_number: int | None = None
    gid_number: int | None = None
    groups: list[str] = field(default_factory=list)


class VerifiedTls(ldap3.Tls):
    """TLS whose certificate and host name are checked by Python's own ``ssl``.

    ldap3 2.9 turns the context's host name check off and checks afterwards with
    ``ssl.match_hostname``, which Python 3.12 removed; its fallback ignores
    IP-address subjectAltNames, so ``ldaps://127.0.0.1`` failed with a valid
    certificate. A default context with ``server_hostname`` set checks DNS names
    and IP addresses alike, during the handshake.
    """

    def __init__(self, ca_file: str | None):
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file or None)

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_certs_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def wrap_socket(self, connection, do_handshake=False):  # noqa: D102 (ldap3's hook)
        connection.socket = self.context().wrap_socket(
            connection.socket, server_side=False, do_handshake_on_connect=do_handshake,
            server_hostname=connection.server.host)


def _server(s: LdapSettings) -> ldap3.Server:
    tls = None
    if s.tls != "none" or s.url.startswith("ldaps://"):
        tls = VerifiedTls(s.ca_file)
    return ldap3.Server(s.url, use_ssl=s.url.startswith("ldaps://"), tls=tls,
                        connect_timeout=s.timeout_seconds, get_info=ldap3.NONE)


def _connect(s: LdapSettings, dn: str | None, password: str | None) -> ldap3.Connection:
    # ldap3 packs receive_timeout into a socket option: it must be a whole number.
    conn = ldap3.Connection(_server(s), user=dn, password=password,
                            receive_timeout=max(1, int(s.timeout_seconds)),
                            raise_exceptions=False, auto_bind=False)
    try:
        conn.open()
        if s.tls == "starttls" and not conn.start_tls():
            raise DirectoryUnavailable(f"StartTLS with the directory failed: {conn.result}")
        if dn is not None and not conn.bind():
            conn.unbind()
            if conn.result.get("result") == 49:  # invalidCredentials
                raise Unauthorized(BAD_CREDENTIALS, CREDENTIALS_FIELD)
            raise DirectoryUnavailable(f"the directory refused the bind: {conn.result.get('description')}")
    except ldap_errors.LDAPException as e:
        raise DirectoryUnavailable(f"the directory at {s.url} is unreachable: {e}") from e
    return conn


def _service_password(s: LdapSettings) -> str | None:
    if not s.bind_password_file:
        return None
    try:
        value = Path(s.bind_password_file).read_text().strip()
    except OSError as e:
        raise DirectoryUnavailable(f"cannot read ldap.bind_password_file: {e.strerror}") from e
    if not value:
        raise DirectoryUnavailable("ldap.bind_password_file is empty")
    return value


def _first(entry, attr: str, default=None):
    try:
        values = entry[attr].values
    except (KeyError, ldap_errors.LDAPKeyError):
        return default
    return values[0] if values else default


def authenticate(s: LdapSettings, username: str, password: str) -> LdapPerson:
    """Check ``username``/``password`` against the directory; return the person."""
    if not isinstance(username, str) or not username.strip():
        raise Unauthorized("a username is required", "username")
    if not isinstance(password, str) or password == "":
        raise Unauthorized("a password is required", "password")
    username = username.strip()
    service = _connect(s, s.bind_dn or None, _service_password(s))
    try:
        flt = s.user_filter.replace("{username}", escape_filter_chars(username))
        ok = service.search(s.user_base, flt, search_scope=ldap3.SUBTREE, size_limit=2,
                            attributes=[s.username_attribute, "cn", "displayName", "mail",
                                        "uidNumber", "gidNumber"])
        if not ok and service.result.get("result") not in (0, 4):
            raise DirectoryUnavailable(f"user search failed: {service.result.get('description')}")
        entries = list(service.entries)
        if len(entries) != 1:
            logger.info("login refused for %r: %d directory entries", username, len(entries))
            raise Unauthorized(BAD_CREDENTIALS, CREDENTIALS_FIELD)
        entry = entries[0]
        person = LdapPerson(
            username=str(_first(entry, s.username_attribute, username)), dn=entry.entry_dn,
            display_name=str(_first(entry, "displayName") or _first(entry, "cn") or ""),
            email=str(_first(entry, "mail", "") or ""),
            uid_number=int(_first(entry, "uidNumber")) if _first(entry, "uidNumber") is not None else None,
            gid_number=int(_first(entry, "gidNumber")) if _first(entry, "gidNumber") is not None else None,
        )
        _connect(s, person.dn, password).unbind()  # raises on a wrong password
        if s.group_base:
            gflt = s.group_filter.replace("{username}", escape_filter_chars(person.username)) \
                .replace("{dn}", escape_filter_chars(person.dn))
            service.search(s.group_base, gflt, search_scope=ldap3.SUBTREE,
                           attributes=[s.group_name_attribute])
            person.groups = sorted({str(_first(g, s.group_name_attribute)) for g in service.entries
                                    if _first(g, s.group_name_attribute)})
        return person
    except ldap_errors.LDAPException as e:
        raise DirectoryUnavailable(f"the directory at {s.url} failed: {e}") from e
    finally:
        service.unbind()
