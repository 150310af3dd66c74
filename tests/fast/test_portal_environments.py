"""The Environments pages, on FakeSlurm: list, create (with a first version), add
versions, make public or private (and the API's PATCH under it), Manage Access; who
may do which (a Viewer or Member sees, a stranger gets 404); set-up lines, names and
descriptions shown as text; CSRF on every form; the vendored highlight.js shipped as
package data and loaded on the environment page only."""
from __future__ import annotations

import fnmatch
import html
import re
from pathlib import Path

import pytest

from gateway import environments
from gateway.errors import ValidationError
from gateway.models import Environment, Grant
from gateway.users import add_user
from tests.fast.portal_client import get_page, post, session

ROOT = Path(__file__).resolve().parents[2]
VENDOR = "gateway/web/portal/static/vendor/highlight"


@pytest.fixture
def gw(fake_gw):
    """On FakeSlurm: nothing here needs a job to run."""
    return fake_gw




def _post(client, token, path: str, expect: int = 302, **form):
    return post(client, token, path, form, expect)


def _flashes(client, path: str) -> list[str]:
    return [html.unescape(m) for m in
            re.findall(r'<p class="flash" role="status">(.*?)</p>', get_page(client, path))]


def _env(name: str) -> Environment:
    return Environment.get(Environment.name == name)


# --- list and create --------------------------------------------------------------------

def test_empty_list_then_create_with_set_up_lines(gw):
    client, token = session(gw, gw.alice)
    page = get_page(client, "/environments")
    assert 'id="environments-empty"' in page and "No environments yet" in page
    for label in ("Environment name", "Description", "Set-up lines of the first version", "Public"):
        assert label in page
    assert ">Create environment</button>" in page

    r = _post(client, token, "/environments", name="samtools", description="Sequence tools",
              setup="module load samtools/1.19\r\nexport SAMTOOLS_THREADS=4\r\n", public="1")
    assert r.headers["Location"].endswith("/environments/samtools")
    assert "Environment samtools created." in _flashes(client, "/environments")

    d = gw.ok("GET", "/environments/samtools", token=gw.alice_token)
    assert d["public"] is True and d["owner"] == "alice" and d["description"] == "Sequence tools"
    # One version, "1", with the lines as bash reads them: the browser's CRLF made LF.
    assert [(v["version"], v["setup"]) for v in d["versions"]] == [
        ("1", "module load samtools/1.19\nexport SAMTOOLS_THREADS=4\n")]

    page = get_page(client, "/environments")
    row = re.search(r"<tr>\s*<td><a href=\"/environments/samtools\">samtools</a>.*?</tr>", page, re.S)
    assert row, page
    cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td>(.*?)</td>", row.group(0), re.S)]
    assert cells[1:] == ["public", "alice", "1", "1"]
    assert "Sequence tools" in cells[0]


def test_create_without_set_up_lines_makes_an_empty_private_environment(gw):
    client, token = session(gw, gw.alice)
    _post(client, token, "/environments", name="later", description="", setup="  \r\n")
    d = gw.ok("GET", "/environments/later", token=gw.alice_token)
    assert d["public"] is False and d["versions"] == []
    page = get_page(client, "/environments/later")
    assert 'id="versions-empty"' in page
    # The Add version form starts at "1".
    assert re.search(r'id="version-label" name="version" value="1"', page)
    listing = get_page(client, "/environments")
    assert re.search(r"later</a>.*?<td>private</td>\s*<td>alice</td>\s*<td>0</td>\s*<td>—</td>",
                     listing, re.S)


@pytest.mark.parametrize(("name", "status"), [
    ("</script><script>alert(1)</script>", 400), ("<b>bold</b>", 400), ("", 400), ("a" * 65, 400),
])
def test_a_bad_name_is_refused_next_to_its_field_and_shown_as_text(gw, name, status):
    client, token = session(gw, gw.alice)
    r = _post(client, token, "/environments", expect=status, name=name, description="<i>d</i>",
              setup="echo '</textarea><script>x()</script>'")
    page = r.get_data(as_text=True)
    assert 'id="err-name"' in page
    assert "<script>alert" not in page and "<b>bold" not in page and "<script>x()" not in page
    assert "<i>d</i>" not in page and "&lt;i&gt;d&lt;/i&gt;" in page
    # What was typed is kept, as text.
    assert "&lt;/textarea&gt;&lt;script&gt;x()&lt;/script&gt;" in page.replace("&#39;", "'")
    assert Environment.select().count() == 0


def test_a_taken_name_is_a_409_next_to_the_name(gw):
    gw.environment("base")  # admin's, private: alice cannot see it
    client, token = session(gw, gw.alice)
    r = _post(client, token, "/environments", expect=409, name="base", setup="true")
    page = html.unescape(r.get_data(as_text=True))
    assert 'id="err-name"' in page and "is not available" in page
    assert _env("base").owner_id == gw.admin.id


def test_the_list_shows_only_what_the_person_may_see(gw):
    gw.environment("secret-env")
    gw.environment("open-env", public=True)
    client, _ = session(gw, gw.alice)
    page = get_page(client, "/environments")
    assert "open-env" in page and "secret-env" not in page


# --- one environment: versions ----------------------------------------------------------

def test_add_versions_newest_first_with_their_times(gw):
    client, token = session(gw, gw.alice)
    _post(client, token, "/environments", name="py", setup="module load python/3.11")
    page = get_page(client, "/environments/py")
    # The form starts from the next label and the latest lines.
    assert 'id="version-label" name="version" value="2"' in page
    assert re.search(r'id="version-setup"[^>]*>module load python/3.11</textarea>', page)
    assert '<label for="version-setup">Set-up lines</label>' in page
    assert ">Add version</button>" in page

    r = _post(client, token, "/environments/py/versions", version="2",
              setup="module load python/3.12\r\nsource /opt/venvs/ml/bin/activate")
    assert r.headers["Location"].endswith("/environments/py#version-2")
    assert "Version 2 added." in _flashes(client, "/environments")
    page = get_page(client, "/environments/py")
    assert page.index('id="version-2"') < page.index('id="version-1"')  # newest first
    assert ('<code class="language-bash">module load python/3.12\nsource /opt/venvs/ml/bin/activate</code>'
            in page)
    assert len(re.findall(r'class="muted created">\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC<', page)) == 2
    versions = gw.ok("GET", "/environments/py/versions", token=gw.alice_token)
    assert [v["version"] for v in versions] == ["1", "2"]


@pytest.mark.parametrize(("version", "status", "says"), [
    ("1", 409, "already exists"), ("", 400, "must not be empty"), ("a b", 400, "must be 1-64"),
    ("<x>", 400, "must be 1-64"),
])
def test_a_bad_version_label_is_shown_next_to_its_field(gw, version, status, says):
    client, token = session(gw, gw.alice)
    _post(client, token, "/environments", name="py", setup="true")
    r = _post(client, token, "/environments/py/versions", expect=status, version=version, setup="echo <b>")
    page = r.get_data(as_text=True)
    assert 'id="err-version"' in page and says in html.unescape(page)
    assert "echo &lt;b&gt;</textarea>" in page  # the lines typed are kept, as text
    assert len(gw.ok("GET", "/environments/py", token=gw.alice_token)["versions"]) == 1


def test_html_and_script_end_tags_in_set_up_lines_and_descriptions_are_text(gw):
    setup = 'echo "</script><script>alert(1)</script>"\ncat <<EOF\n<img src=x onerror=alert(2)>\nEOF'
    client, token = session(gw, gw.alice)
    _post(client, token, "/environments", name="nasty", description="<svg onload=alert(3)>",
          setup=setup, public="1")
    for path in ("/environments/nasty", "/environments"):
        page = get_page(client, path)
        for raw in ("<script>alert", "<img src=x", "<svg onload"):
            assert raw not in page, (path, raw)
    page = get_page(client, "/environments/nasty")
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Shown exactly as typed once unescaped.
    code = re.search(r'<code class="language-bash">(.*?)</code>', page, re.S).group(1)
    assert html.unescape(code) == setup
    # No inline script or style anywhere on the pages (the Content-Security-Policy forbids them).
    for path in ("/environments/nasty", "/environments"):
        page = get_page(client, path)
        assert " style=" not in page and not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)


# --- public / private -------------------------------------------------------------------

def test_make_public_and_private_from_the_page(gw):
    client, token = session(gw, gw.alice)
    _post(client, token, "/environments", name="tools", setup="true")
    page = get_page(client, "/environments/tools")
    assert 'id="make-public"' in page and 'id="make-private"' not in page
    _post(client, token, "/environments/tools/settings", public="true")
    assert _env("tools").public is True
    assert "Environment tools is now public." in _flashes(client, "/environments")
    page = get_page(client, "/environments/tools")
    assert 'id="make-private"' in page and 'id="make-public"' not in page
    _post(client, token, "/environments/tools/settings", public="false")
    assert _env("tools").public is False


def test_an_environment_a_public_template_runs_in_stays_public(gw):
    gw.environment("shared-env", public=True)
    tpl = gw.template(name="pub-tpl", environment="shared-env")
    gw.ok("PATCH", f"/templates/{tpl['id']}", json={"public": True})
    client, token = session(gw, gw.admin)
    _post(client, token, "/environments/shared-env/settings", public="false")
    assert _env("shared-env").public is True
    [msg] = _flashes(client, "/environments")
    assert msg.startswith("Not changed: public templates run in it (pub-tpl)")
    r = gw.api("PATCH", "/environments/shared-env", json={"public": False})
    assert r.status_code == 400 and r.json["field"] == "public" and "pub-tpl" in r.json["error"]
    # Once the template is private, so may the environment be.
    gw.ok("PATCH", f"/templates/{tpl['id']}", json={"public": False})
    assert gw.ok("PATCH", "/environments/shared-env", json={"public": False})["public"] is False


def test_api_patch_changes_public_and_description_and_names_the_field_on_bad_input(gw):
    gw.environment("base", token=gw.alice_token)
    d = gw.ok("PATCH", "/environments/base", token=gw.alice_token, json={"public": True})
    assert d["public"] is True and d["name"] == "base" and [v["version"] for v in d["versions"]] == ["1"]
    d = gw.ok("PATCH", "/environments/base", token=gw.alice_token, json={"description": "new words"})
    assert d["description"] == "new words" and d["public"] is True
    for body, field in (({"public": "yes"}, "public"), ({"public": 1}, "public"),
                        ({"description": 5}, "description"), ({"name": "other"}, "name"),
                        ({"owner": "bob"}, "owner")):
        r = gw.api("PATCH", "/environments/base", token=gw.alice_token, json=body)
        assert r.status_code == 400 and r.json["field"] == field, (body, r.json)
    r = gw.api("PATCH", "/environments/base", token=gw.alice_token, json=["public"])
    assert r.status_code == 400
    assert _env("base").public is True and _env("base").description == "new words"


def test_api_patch_follows_the_access_table(gw):
    gw.environment("base", token=gw.alice_token)
    # bob cannot see it: 404, as for a name that does not exist.
    r = gw.api("PATCH", "/environments/base", token=gw.bob_token, json={"public": True})
    assert r.status_code == 404
    assert gw.api("PATCH", "/environments/nope", token=gw.bob_token, json={"public": True}).status_code == 404
    gw.ok("POST", "/environments/base/access", 201, token=gw.alice_token,
          json={"user": "bob", "role": "member"})
    r = gw.api("PATCH", "/environments/base", token=gw.bob_token, json={"public": True})
    assert r.status_code == 403
    gw.ok("POST", "/environments/base/access", 201, token=gw.alice_token,
          json={"user": "bob", "role": "manager"})
    assert gw.ok("PATCH", "/environments/base", token=gw.bob_token, json={"public": True})["public"] is True


# --- who may do what on the pages --------------------------------------------------------

@pytest.fixture
def shared(gw):
    """alice's private environment "lab-env"; carol a Viewer, dave a Member, erin a
    Manager; frank holds nothing."""
    gw.environment("lab-env", setup="module load lab", token=gw.alice_token)
    people = {name: add_user(name) for name in ("carol", "dave", "erin", "frank")}
    for name, role in (("carol", "viewer"), ("dave", "member"), ("erin", "manager")):
        gw.ok("POST", "/environments/lab-env/access", 201, token=gw.alice_token,
              json={"user": name, "role": role})
    return people


@pytest.mark.parametrize("who", ["carol", "dave"])
def test_viewers_and_members_see_but_cannot_change(gw, shared, who):
    client, token = session(gw, shared[who])
    page = get_page(client, "/environments/lab-env")
    assert "module load lab" in page and 'id="access-table"' in page
    for control in ('id="add-version-form"', 'id="make-public"', 'id="make-private"', 'id="grant-form"',
                    ">Remove</button>"):
        assert control not in page, control
    assert 'id="edit-note"' in page
    # Posting anyway: refused with 403 (they can see it), nothing changed.
    r = _post(client, token, "/environments/lab-env/versions", expect=403, version="9", setup="evil")
    assert "you may not edit this environment" in html.unescape(r.get_data(as_text=True))
    _post(client, token, "/environments/lab-env/settings", expect=403, public="true")
    _post(client, token, "/environments/lab-env/access", action="grant", user="frank", role="owner")
    assert any(m.startswith("Not changed: you may not") for m in _flashes(client, "/environments"))
    _post(client, token, "/environments/lab-env/access", action="revoke", user="erin")
    env = _env("lab-env")
    assert env.public is False and [v.version for v in env.versions] == ["1"]
    assert Grant.select().where(Grant.kind == "environment").count() == 3


def test_a_stranger_gets_404_everywhere(gw, shared):
    client, token = session(gw, shared["frank"])
    assert "lab-env" not in get_page(client, "/environments")
    get_page(client, "/environments/lab-env", expect=404)
    _post(client, token, "/environments/lab-env/versions", expect=404, version="9", setup="x")
    _post(client, token, "/environments/lab-env/settings", expect=404, public="true")
    _post(client, token, "/environments/lab-env/access", expect=404, action="grant", user="frank",
          role="owner")
    assert Grant.select().where(Grant.user == shared["frank"]).count() == 0


def test_a_manager_adds_versions_changes_public_and_manages_access_but_not_owners(gw, shared):
    client, token = session(gw, shared["erin"])
    page = get_page(client, "/environments/lab-env")
    assert 'id="add-version-form"' in page and 'id="make-public"' in page and 'id="grant-form"' in page
    _post(client, token, "/environments/lab-env/versions", version="2", setup="module load lab/2")
    _post(client, token, "/environments/lab-env/settings", public="true")
    _post(client, token, "/environments/lab-env/access", action="grant", user="frank", role="viewer")
    _post(client, token, "/environments/lab-env/access", action="grant", user="frank", role="owner")
    assert "Not changed: only an owner may make, change or remove an owner" in _flashes(
        client, "/environments")
    env = _env("lab-env")
    assert env.public and [v.version for v in env.versions.order_by(environments.EnvironmentVersion.id)] == \
        ["1", "2"]
    rows = gw.ok("GET", "/environments/lab-env/access", token=gw.alice_token)
    assert {"user": "frank", "role": "viewer"} in [{k: r[k] for k in ("user", "role")} for r in rows]


def test_a_team_is_granted_from_the_page(gw, shared):
    from gateway.models import Team, TeamMember

    team = Team.create(name="lab-team", source="local")
    TeamMember.create(team=team, user=gw.bob)
    client, token = session(gw, gw.alice)
    page = get_page(client, "/environments/lab-env")
    assert '<option>lab-team</option>' in page
    _post(client, token, "/environments/lab-env/access", action="grant", team="lab-team", role="member")
    assert "Access granted." in _flashes(client, "/environments")
    assert gw.ok("GET", "/environments/lab-env", token=gw.bob_token)["name"] == "lab-env"
    page = get_page(client, "/environments/lab-env")
    assert "team lab-team" in page


# --- CSRF -------------------------------------------------------------------------------

def test_every_form_needs_its_csrf_token(gw, shared):
    client, _ = session(gw, gw.alice)
    for path, form in (("/environments", {"name": "new-env", "setup": "true"}),
                       ("/environments/lab-env/versions", {"version": "2", "setup": "x"}),
                       ("/environments/lab-env/settings", {"public": "true"}),
                       ("/environments/lab-env/access",
                        {"action": "grant", "user": "frank", "role": "member"})):
        r = _post(client, None, path, expect=400, **form)
        assert "CSRF" in r.get_data(as_text=True), path
    env = _env("lab-env")
    assert Environment.select().count() == 1 and not env.public and env.versions.count() == 1
    assert Grant.select().where(Grant.user == shared["frank"]).count() == 0


# --- the service ------------------------------------------------------------------------

@pytest.mark.parametrize(("labels", "expected"), [
    ([], "1"), (["1"], "2"), (["1", "2.9"], "2.10"), (["v07"], "v08"), (["2024.1"], "2024.2"),
    (["stable"], ""), (["3", "1", "2"], "4"), (["1", "3", "2"], "4"), (["9" * 64], ""),
])
def test_suggest_next_version(labels, expected):
    assert environments.suggest_next_version(labels) == expected


def test_create_with_a_bad_first_version_leaves_nothing(gw):
    ctx, user = gw.ctx, gw.alice
    with pytest.raises(ValidationError) as e:
        environments.create_environment(ctx, user, {"name": "e", "version": "bad label", "setup": "x"})
    assert e.value.field == "version" and Environment.select().count() == 0
    with pytest.raises(ValidationError) as e:
        environments.create_environment(ctx, user, {"name": "e", "setup": 5})
    assert e.value.field == "setup" and Environment.select().count() == 0
    env = environments.create_environment(ctx, user, {"name": "e", "setup": "x"})
    assert [(v.version, v.setup) for v in env.versions] == [("1", "x")]
    # Without "setup" or "version", as before: no version.
    assert list(environments.create_environment(ctx, user, {"name": "f"}).versions) == []


# --- highlight.js: loaded on the environment page only, shipped with the package ---------

def test_highlighting_is_loaded_on_the_environment_page_only(gw):
    client, token = session(gw, gw.alice)
    _post(client, token, "/environments", name="py", setup="true")
    page = get_page(client, "/environments/py")
    for asset in ("vendor/highlight/highlight.min.js", "vendor/highlight/github.min.css",
                  "environments.js", "environments.css"):
        assert f"/static/portal/{asset}" in page
        r = client.get(f"/static/portal/{asset}")
        assert r.status_code == 200, asset
        r.close()
    assert page.index("highlight.min.js") < page.index("environments.js")  # deferred, in order
    for other in ("/jobs", "/templates", "/environments"):
        assert "highlight.min.js" not in get_page(client, other)


def test_the_package_ships_the_portal_files_and_vendored_highlight_js():
    """setup.cfg's include_package_data ships what MANIFEST.in lists: its `graft` and
    `recursive-include` lines (the only kinds it uses) must cover every portal file, the
    vendored ones included. (Read here, not through setuptools, which a Python 3.12+
    virtualenv does not have.)"""
    rules = [line.split() for line in (ROOT / "MANIFEST.in").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert {r[0] for r in rules} <= {"graft", "recursive-include", "global-exclude"}, rules

    def shipped_file(path: str) -> bool:
        inside = [r for r in rules if r[0] != "global-exclude" and (path + "/").startswith(r[1] + "/")]
        return any(r[0] == "graft" or any(fnmatch.fnmatch(path.rsplit("/", 1)[1], p) for p in r[2:])
                   for r in inside)

    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "gateway").rglob("*")
               if p.is_file() and shipped_file(str(p.relative_to(ROOT)))}
    portal = ROOT / "gateway/web/portal"
    wanted = {str(p.relative_to(ROOT)) for sub in ("static", "templates") for p in (portal / sub).rglob("*")
              if p.is_file()}
    assert {f"{VENDOR}/{n}" for n in ("highlight.min.js", "github.min.css", "LICENSE", "README")} <= wanted
    assert wanted <= shipped, sorted(wanted - shipped)
    assert "11." in (ROOT / VENDOR / "README").read_text()
