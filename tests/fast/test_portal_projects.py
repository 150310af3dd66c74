"""Projects, experiments and their data in the portal: create and list, the data browser
(sizes, new folders, downloads, uploads without JavaScript), Manage Access, and what a
hostile signed-in person gets: Viewers and strangers, path escapes, HTML in file names,
forms and API calls without their CSRF token."""
from __future__ import annotations

import io
import os
import re

import pytest

from gateway.access import ACTIONS, Role
from gateway.users import add_user
from tests.fast.portal_client import get_page, post, session

EXP = "/projects/lab/experiments/run1"
API = f"/api/v1{EXP}"


@pytest.fixture
def gw(fake_gw):
    """On FakeSlurm: nothing here runs a job."""
    return fake_gw






def lab(gw):
    """alice owns project lab with experiment run1 (made through the portal); her session."""
    client, token = session(gw, gw.alice)
    post(client, token, "/projects", {"name": "lab"})
    post(client, token, "/projects/lab/experiments", {"name": "run1"})
    return client, token


def refused(client, token: str, path: str, data: dict, expect: int) -> str:
    """The page a form comes back as when the gateway refuses it."""
    return post(client, token, path, data, expect=expect).get_data(as_text=True)


def row(html: str, text: str) -> str:
    """The table row holding ``text``."""
    return next(r for r in re.findall(r"<tr.*?</tr>", html, re.S) if text in r)


def viewer_reads_data() -> bool:
    """Whether the access table lets a Viewer read an experiment's data."""
    return ACTIONS["experiment.read_data"] <= Role.VIEWER


def test_create_project_and_experiment_from_the_portal(gw):
    client, token = session(gw, gw.alice)
    html = get_page(client, "/projects")
    assert 'id="no-projects"' in html
    assert re.search(r'<label for="project-name">Project name</label>', html)
    assert ">Create project</button>" in html

    r = post(client, token, "/projects", {"name": "lab"})
    assert r.headers["Location"].endswith("/projects/lab")
    html = get_page(client, "/projects/lab")
    assert 'id="no-experiments"' in html
    assert "Experiment name" in html and ">Create experiment</button>" in html
    # A bad or taken name is shown next to its field, and nothing is made.
    html = refused(client, token, "/projects", {"name": "../up"}, 400)
    assert 'id="err-name"' in html and "letters, digits" in html and 'value="../up"' in html
    html = refused(client, token, "/projects", {"name": "lab"}, 409)
    assert 'id="err-name"' in html and "already exists" in html

    r = post(client, token, "/projects/lab/experiments", {"name": "run1"})
    assert r.headers["Location"].endswith(EXP)
    post(client, token, "/projects/lab/experiments", {"name": "run2"})
    html = refused(client, token, "/projects/lab/experiments", {"name": "run1"}, 409)
    assert 'id="err-name"' in html

    listing = row(get_page(client, "/projects"), ">lab</a>")
    assert 'href="/projects/lab"' in listing and "<td>alice</td>" in listing and "<td>2</td>" in listing
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", listing)
    html = get_page(client, "/projects/lab")
    assert f'href="{EXP}"' in html and "run2" in html and 'id="access-table"' in html
    # The API sees what the portal made.
    assert [e["name"] for e in gw.ok("GET", "/projects/lab/experiments")] == ["run1", "run2"]
    assert (gw.config.data_root / "projects/lab/run1/Processed").is_dir()


def test_the_listing_shows_folders_first_with_sizes_and_files_download(gw):
    client, _ = lab(gw)
    gw.ok("PUT", "/projects/lab/experiments/run1/files/raw/b.txt", 201, data=b"x" * 1536)
    gw.ok("PUT", "/projects/lab/experiments/run1/files/a.bin", 201, data=b"\0" * (3 * 2**20))
    gw.ok("PUT", "/projects/lab/experiments/run1/files/one.txt", 201, data=b"1")
    html = get_page(client, EXP)
    names = re.findall(r'data-path="([^"]+)" data-type="(\w+)"', html)
    assert names == [("Processed", "dir"), ("raw", "dir"), ("a.bin", "file"), ("one.txt", "file")]
    assert "3.0 MiB" in row(html, 'data-path="a.bin"') and "1 byte<" in row(html, 'data-path="one.txt"')
    assert "read-only" in row(html, 'data-path="Processed"')
    assert f'href="{EXP}?path=raw"' in html
    assert "Up to 512 MB per file" in html

    # Inside a folder: the breadcrumb, the way up, the file with its size and download link.
    html = get_page(client, f"{EXP}?path=raw")
    crumbs = re.search(r'<nav class="crumbs folder-crumbs".*?</nav>', html, re.S).group(0)
    assert f'<a href="{EXP}">run1</a>' in crumbs and '<span aria-current="location">raw</span>' in crumbs
    assert 'id="folder-up"' in html and 'name="path" value="raw"' in html
    b = row(html, 'data-path="raw/b.txt"')
    assert "1.5 KiB" in b and f'href="{API}/files/raw/b.txt"' in b and 'aria-label="Download b.txt"' in b

    r = client.get(f"{API}/files/raw/b.txt")
    assert r.status_code == 200 and r.data == b"x" * 1536
    assert re.match(r"attachment;.*b\.txt", r.headers["Content-Disposition"])
    assert r.mimetype == "application/octet-stream" and "sandbox" in r.headers["Content-Security-Policy"]
    # A folder or a missing file names the field.
    r = client.get(f"{API}/files/raw")
    assert r.status_code == 400 and r.json["field"] == "path" and "folder" in r.json["error"]
    r = client.get(f"{API}/files/raw/nope.txt")
    assert r.status_code == 404 and r.json["field"] == "path"
    # A folder that is not there: said on the page, above the top folder's listing.
    html = get_page(client, f"{EXP}?path=gone", expect=404)
    assert 'id="err-path"' in html and "does not exist" in html and 'data-path="raw"' in html


def test_make_folder_in_the_portal_and_the_api(gw):
    client, token = lab(gw)
    html = get_page(client, EXP)
    assert '<label for="folder-name">Folder name</label>' in html and ">Create folder</button>" in html
    r = post(client, token, f"{EXP}/folders", {"path": "", "name": "raw"})
    assert r.headers["Location"].endswith(EXP)
    r = post(client, token, f"{EXP}/folders", {"path": "raw", "name": "day 1"})
    assert r.headers["Location"].endswith(f"{EXP}?path=raw")
    exp_dir = gw.config.data_root / "projects/lab/run1"
    assert (exp_dir / "raw/day 1").is_dir()
    assert 'data-path="raw/day 1" data-type="dir"' in get_page(client, f"{EXP}?path=raw")
    # Again: shown next to the field, with the reason.
    html = refused(client, token, f"{EXP}/folders", {"path": "raw", "name": "day 1"}, 409)
    assert 'id="err-name"' in html and "already exists" in html
    html = refused(client, token, f"{EXP}/folders", {"path": "raw", "name": ""}, 400)
    assert 'id="err-name"' in html

    made = gw.ok("POST", "/projects/lab/experiments/run1/folders", 201, json={"path": "a/b/c"})
    assert made == {"path": "a/b/c"}
    assert (exp_dir / "a/b/c").is_dir()
    r = gw.api("POST", "/projects/lab/experiments/run1/folders", json={"path": "a/b"})
    assert r.status_code == 409 and r.json["field"] == "path"
    gw.ok("PUT", "/projects/lab/experiments/run1/files/a/file.txt", 201, data=b"f")
    r = gw.api("POST", "/projects/lab/experiments/run1/folders", json={"path": "a/file.txt/sub"})
    assert r.status_code == 400 and r.json["field"] == "path"
    r = gw.api("POST", "/projects/lab/experiments/run1/folders", json={})
    assert r.status_code == 400 and r.json["field"] == "path"


def test_upload_without_javascript(gw):
    client, token = lab(gw)
    html = get_page(client, EXP)
    form = re.search(r'<form id="upload-form".*?</form>', html, re.S).group(0)
    assert 'enctype="multipart/form-data"' in form and f'action="{EXP}/upload"' in form
    assert '<label for="upload-files">Upload files</label>' in form and 'name="files" multiple' in form
    assert "webkitdirectory" in form  # shown by the script only: without it, files alone
    assert re.search(r'<div class="field" id="upload-folder-field" hidden>', form)

    r = post(client, token, f"{EXP}/upload", {
        "path": "", "files": [(io.BytesIO(b"hello\n"), "a.txt"), (io.BytesIO(b"\1\2"), "sub/b.bin"),
                              (io.BytesIO(b"up"), "../../escape.txt")]},
        content_type="multipart/form-data")
    assert r.headers["Location"].endswith(EXP)
    exp_dir = gw.config.data_root / "projects/lab/run1"
    assert (exp_dir / "a.txt").read_bytes() == b"hello\n" and (exp_dir / "b.bin").read_bytes() == b"\1\2"
    # A name is its last part only: the "../.." went nowhere.
    assert (exp_dir / "escape.txt").read_bytes() == b"up"
    assert not (gw.config.data_root / "escape.txt").exists()
    assert not (gw.config.data_root / "projects/escape.txt").exists()
    html = get_page(client, EXP)
    assert "Uploaded 3 files" in html and 'data-path="a.txt"' in html

    # Into a folder; and into Processed, refused in plain words.
    post(client, token, f"{EXP}/folders", {"path": "", "name": "raw"})
    post(client, token, f"{EXP}/upload", {"path": "raw", "files": [(io.BytesIO(b"r"), "r.txt")]},
         content_type="multipart/form-data")
    assert (exp_dir / "raw/r.txt").read_bytes() == b"r"
    post(client, token, f"{EXP}/upload", {"path": "Processed", "files": [(io.BytesIO(b"p"), "p.txt")]},
         content_type="multipart/form-data")
    assert not (exp_dir / "Processed/p.txt").exists()
    assert "Not uploaded: p.txt: the Processed folder is written by jobs only" in get_page(client, EXP)
    # Nothing chosen.
    post(client, token, f"{EXP}/upload", {"path": ""}, content_type="multipart/form-data")
    assert "choose one or more files" in get_page(client, EXP)


def test_processed_is_read_only_in_the_browser(gw):
    client, token = lab(gw)
    html = get_page(client, f"{EXP}?path=Processed")
    assert 'id="processed-note"' in html
    assert 'id="upload-form"' not in html and 'id="folder-form"' not in html
    html = refused(client, token, f"{EXP}/folders", {"path": "Processed", "name": "x"}, 400)
    assert "written by jobs only" in html
    for path in ("Processed", "Processed/x", "Processed/x/y"):
        r = gw.api("POST", "/projects/lab/experiments/run1/folders", json={"path": path})
        assert r.status_code == 400 and r.json["field"] == "path" and "Processed" in r.json["error"], path


def test_viewer_sees_but_cannot_upload_or_make_folders(gw):
    client, token = lab(gw)
    gw.ok("PUT", "/projects/lab/experiments/run1/files/raw/a.txt", 201, data=b"data")
    post(client, token, "/projects/lab/access", {"action": "grant", "user": "bob", "role": "viewer"})
    assert "Access granted." in get_page(client, "/projects/lab")
    bob, bob_token = session(gw, gw.bob)
    assert row(get_page(bob, "/projects"), ">lab</a>")
    html = get_page(bob, "/projects/lab")
    assert 'id="experiment-form"' not in html and 'id="grant-form"' not in html
    html = get_page(bob, EXP)
    for control in ('id="upload-form"', 'id="folder-form"', 'id="upload-files"', 'id="upload-folder"',
                    'id="grant-form"'):
        assert control not in html, control
    assert "bob" in get_page(bob, EXP) and 'id="access-table"' in html
    if viewer_reads_data():
        assert 'data-path="raw"' in html
        assert bob.get(f"{API}/files/raw/a.txt").data == b"data"
    else:
        assert 'id="no-data-access"' in html and 'data-path="raw"' not in html
        assert bob.get(f"{API}/files/raw/a.txt").status_code == 403
        assert bob.get(f"{API}/files?path=raw").status_code == 403
    # Writing is refused however it is asked.
    headers = {"X-CSRFToken": bob_token}
    r = bob.put(f"{API}/files/raw/b.txt", data=b"x", headers=headers)
    assert r.status_code == 403 and "may not write data" in r.json["error"]
    r = bob.post(f"{API}/folders", json={"path": "new"}, headers=headers)
    assert r.status_code == 403 and "may not write data" in r.json["error"]
    post(bob, bob_token, f"{EXP}/folders", {"path": "", "name": "new"}, expect=403)
    post(bob, bob_token, f"{EXP}/upload", {"path": "", "files": [(io.BytesIO(b"x"), "x.txt")]},
         expect=403, content_type="multipart/form-data")
    post(bob, bob_token, "/projects/lab/experiments", {"name": "mine"}, expect=403)
    post(bob, bob_token, f"{EXP}/access", {"action": "grant", "user": "bob", "role": "owner"})
    exp_dir = gw.config.data_root / "projects/lab/run1"
    assert not any((exp_dir / p).exists() for p in ("new", "x.txt", "raw/b.txt"))
    assert [a["user"] for a in gw.ok("GET", "/projects/lab/experiments/run1/access")] == ["alice"]


def test_a_stranger_gets_404_everywhere(gw):
    client, token = lab(gw)
    gw.ok("PUT", "/projects/lab/experiments/run1/files/a.txt", 201, data=b"TOP SECRET")
    carol = add_user("carol")
    stranger, st_token = session(gw, carol)
    assert ">lab<" not in get_page(stranger, "/projects")
    for path in ("/projects/lab", EXP, f"{EXP}?path=raw", f"{API}/files/a.txt", f"{API}/files"):
        r = stranger.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert b"TOP SECRET" not in r.data
    for path, data in ((f"{EXP}/folders", {"name": "x"}), ("/projects/lab/experiments", {"name": "x"}),
                       (f"{EXP}/access", {"action": "grant", "user": "carol", "role": "owner"}),
                       ("/projects/lab/access", {"action": "grant", "user": "carol", "role": "owner"})):
        post(stranger, st_token, path, data, expect=404)
    r = stranger.post(f"{API}/folders", json={"path": "x"}, headers={"X-CSRFToken": st_token})
    assert r.status_code == 404 and r.json["field"] == "experiment"


def test_an_experiment_shared_on_its_own_is_listed(gw):
    client, token = lab(gw)
    post(client, token, f"{EXP}/access", {"action": "grant", "user": "bob", "role": "member"})
    bob, _ = session(gw, gw.bob)
    html = get_page(bob, "/projects")
    assert 'id="no-projects"' in html
    shared = row(html, ">run1</a>")
    assert f'href="{EXP}"' in shared and "<td>lab</td>" in shared
    html = get_page(bob, EXP)
    assert 'id="upload-form"' in html
    assert bob.get("/projects/lab").status_code == 404
    assert 'href="/projects/lab"' not in html  # the breadcrumb names the project, no link to a 404


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "/etc/gateway-test", "Processed/x", "bad\nname",
                                  "out/x", "to-processed/x"])
def test_path_escapes_are_refused_naming_the_field(gw, tmp_path, path):
    lab(gw)
    exp_dir = gw.config.data_root / "projects/lab/run1"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, exp_dir / "out")
    os.symlink(exp_dir / "Processed", exp_dir / "to-processed")
    r = gw.api("POST", "/projects/lab/experiments/run1/folders", json={"path": path})
    assert r.status_code == 400 and r.json["field"] == "path", r.json
    assert not (outside / "x").exists() and not (exp_dir / "Processed/x").exists()


def test_downloads_do_not_leave_the_experiment(gw, tmp_path):
    client, _ = lab(gw)
    exp_dir = gw.config.data_root / "projects/lab/run1"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    os.symlink(outside, exp_dir / "out")
    os.symlink(outside / "secret.txt", exp_dir / "secret-link.txt")
    os.mkfifo(exp_dir / "fifo")
    for path, status in (("out/secret.txt", 400), ("secret-link.txt", 400), ("fifo", 404),
                         ("..%2F..%2Fgateway.toml", 400)):
        r = client.get(f"{API}/files/{path}")
        assert r.status_code == status and r.json["field"] == "path", (path, r.status_code, r.json)
        assert b"TOP SECRET" not in r.data
    r = gw.api("GET", "/projects/lab/experiments/run1/files?path=out")
    assert r.status_code == 400 and r.json["field"] == "path"
    # The listing shows neither the links out nor what they reach.
    html = get_page(client, EXP)
    assert 'data-path="out"' not in html and 'data-path="secret-link.txt"' not in html
    assert get_page(client, f"{EXP}?path=out", expect=404).count('id="err-path"') == 1


def test_html_in_file_and_folder_names_is_shown_as_text(gw):
    client, _ = lab(gw)
    evil = '<img src=x onerror=alert(1)>"&.txt'
    gw.ok("PUT", f"/projects/lab/experiments/run1/files/{evil.replace('&', '%26')}", 201, data=b"e")
    gw.ok("POST", "/projects/lab/experiments/run1/folders", 201, json={"path": "<i onmouseover=x>"})
    html = get_page(client, EXP)
    assert "<img src=x" not in html and "<i onmouseover" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;&amp;.txt" in html and "&lt;i onmouseover=x&gt;" in html
    html = get_page(client, f"{EXP}?path=%3Ci%20onmouseover%3Dx%3E")
    assert "<i onmouseover" not in html and 'aria-current="location">&lt;i onmouseover=x&gt;<' in html
    # The names travel to the download URL encoded, and back as the file's name.
    href = re.search(r'class="download" download\s+href="([^"]+)"', get_page(client, EXP)).group(1)
    assert "<" not in href and '"' not in href
    r = client.get(href.replace("&amp;", "&"))
    assert r.status_code == 200 and r.data == b"e"


def test_forms_and_session_calls_need_their_csrf_token(gw):
    client, token = lab(gw)
    for path, data in (("/projects", {"name": "p2"}), ("/projects/lab/experiments", {"name": "e2"}),
                       (f"{EXP}/folders", {"name": "f"}), (f"{EXP}/access", {"action": "grant", "user": "bob",
                                                                             "role": "owner"})):
        r = client.post(path, data=data)
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True), path
    r = client.post(f"{EXP}/upload", data={"files": [(io.BytesIO(b"x"), "x.txt")]},
                    content_type="multipart/form-data")
    assert r.status_code == 400
    r = client.put(f"{API}/files/x.txt", data=b"x")
    assert r.status_code == 403 and "X-CSRFToken" in r.json["error"]
    r = client.post(f"{API}/folders", json={"path": "f"})
    assert r.status_code == 403 and "X-CSRFToken" in r.json["error"]
    exp_dir = gw.config.data_root / "projects/lab/run1"
    assert sorted(os.listdir(exp_dir)) == ["Processed"]
    assert [p["name"] for p in gw.ok("GET", "/projects")] == ["lab"]
    # With the header, as the page's script sends it, the same calls work.
    assert client.put(f"{API}/files/x.txt", data=b"x", headers={"X-CSRFToken": token}).status_code == 201
    r = client.post(f"{API}/folders", json={"path": "f"}, headers={"X-CSRFToken": token})
    assert r.status_code == 201 and r.json == {"path": "f"}


def test_uploads_in_progress_are_not_listed(gw):
    client, _ = lab(gw)
    exp_dir = gw.config.data_root / "projects/lab/run1"
    (exp_dir / ".big.bin.upload").write_bytes(b"half")
    (exp_dir / ".hidden").write_bytes(b"h")
    html = get_page(client, EXP)
    assert ".big.bin.upload" not in html and 'data-path=".hidden"' in html


def test_manage_access_on_the_experiment_grants_a_team(gw):
    from gateway.models import Team, TeamMember

    team = Team.create(name="bio-team", source="local")
    TeamMember.create(team=team, user=gw.bob)
    client, token = lab(gw)
    html = get_page(client, EXP)
    assert re.search(r'<select id="grant-team" name="team">.*<option>bio-team</option>', html, re.S)
    post(client, token, f"{EXP}/access", {"action": "grant", "team": "bio-team", "role": "viewer"})
    html = get_page(client, EXP)
    assert "Access granted." in html and "team bio-team" in row(html, "team bio-team")
    bob, _ = session(gw, gw.bob)
    assert get_page(bob, EXP)
    post(client, token, f"{EXP}/access", {"action": "revoke", "team": "bio-team"})
    assert bob.get(EXP).status_code == 404
