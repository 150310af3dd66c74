"""Create/Edit Job Template in the portal, as a browser without JavaScript sends it:
any number of input and output rows in order, rows removed or left blank, the "Add
another" button, errors beside their fields in plain words, one version per save, and
what a hostile signed-in person could try."""
from __future__ import annotations

import io
import re
from html import unescape

import pytest

from gateway import job_templates
from gateway.models import Template, TemplateVersion
from tests.fast.portal_client import session

SCRIPT = "echo hello\n"


@pytest.fixture
def gw(fake_gw):
    fake_gw.environment("base", public=True)
    fake_gw.environment("other", public=True)
    fake_gw.ok("POST", "/environments/other/versions", 201, json={"version": "2", "setup": "true"})
    return fake_gw


@pytest.fixture
def alice(gw):
    return session(gw, gw.alice)


def form(token: str, name: str = "tpl", inputs=(), outputs=(), **extra) -> dict:
    """The form's fields: ``inputs``/``outputs`` are (row number, fields) pairs or lists
    of fields numbered from 0, as the page names its controls."""
    data = {"csrf_token": token, "name": name, "description": "d", "language": "bash",
            "script": SCRIPT, "environment": "base", "environment_version": "", "python_executable": ""}
    for kind, rows in (("inputs", inputs), ("outputs", outputs)):
        for n, row in (rows if rows and isinstance(rows[0], tuple) else enumerate(rows)):
            for key, value in row.items():
                data[f"{kind}-{n}-{key}"] = value
    data.update(extra)
    return data


def page_rows(html: str, kind: str) -> list[str]:
    """The row names of ``kind`` on a page (not counting the <template> rows)."""
    html = re.sub(r"<template.*?</template>", "", html, flags=re.S)
    return re.findall(rf'<input id="{kind}-(\d+)-name" name="{kind}-\1-name" value="([^"]*)"', html)


def saved(gw, name: str) -> dict:
    return gw.ok("GET", f"/templates/{Template.get(Template.name == name).id}")


def test_many_inputs_and_outputs_are_saved_in_the_order_of_their_rows(gw, alice):
    client, token = alice
    kinds = ["string", "integer", "number", "boolean", "choice", "path", "string"]
    defaults = {"integer": "3", "number": "1.5", "boolean": "yes", "choice": "b"}
    inputs = [{"name": f"IN{n}", "type": kinds[n], "description": f"input {n}",
               "default": defaults.get(kinds[n], ""),
               **({"choices": "a, b ,c"} if kinds[n] == "choice" else {}),
               **({"advanced": "on"} if n == 6 else {})} for n in range(7)]
    # The numbers need not be contiguous: the browser may have removed rows in between.
    numbered = list(zip([0, 1, 2, 5, 9, 10, 11], inputs, strict=True))
    outputs = [{"name": f"OUT{n}", "description": f"output {n}"} for n in range(3)]
    r = client.post("/templates/new", data=form(token, "many", numbered, outputs))
    assert r.status_code == 302, r.get_data(as_text=True)
    d = saved(gw, "many")
    assert [i["name"] for i in d["inputs"]] == [f"DC_IN{n}" for n in range(7)]
    assert [o["name"] for o in d["outputs"]] == ["OUT_OUT0", "OUT_OUT1", "OUT_OUT2"]
    assert [i["type"] for i in d["inputs"]] == kinds
    assert d["inputs"][4]["choices"] == ["a", "b", "c"] and d["inputs"][4]["default"] == "b"
    assert d["inputs"][1]["default"] == "3" and d["inputs"][3]["default"] == "true"
    assert [i["advanced"] for i in d["inputs"]] == [False] * 6 + [True]
    assert d["inputs"][6]["description"] == "input 6"
    assert d["latest_version"] == 1

    # The edit form shows them all, in order, with each input's settings summarised.
    page = client.get(f"/templates/{d['id']}/edit").get_data(as_text=True)
    assert [name for _, name in page_rows(page, "inputs")] == [f"IN{n}" for n in range(7)]
    assert [name for _, name in page_rows(page, "outputs")] == ["OUT0", "OUT1", "OUT2"]
    assert 'id="inputs-6-summary">advanced · input 6<' in page
    assert 'id="inputs-4-summary">choices: a, b, c · input 4<' in page


def test_a_row_removed_from_the_middle_leaves_the_others_in_order(gw, alice):
    client, token = alice
    client.post("/templates/new", data=form(token, "rm", [{"name": n} for n in ("A", "B", "C", "D")],
                                            [{"name": n} for n in ("X", "Y", "Z")]))
    tpl = Template.get(Template.name == "rm")
    # The browser removed input 2 (B) and output 1 (X): the form comes without those numbers.
    r = client.post(f"/templates/{tpl.id}/edit", data=form(
        token, "rm", [(0, {"name": "A"}), (2, {"name": "C"}), (3, {"name": "D"})],
        [(1, {"name": "Y"}), (2, {"name": "Z"})]))
    assert r.status_code == 302, r.get_data(as_text=True)
    d = saved(gw, "rm")
    assert [i["name"] for i in d["inputs"]] == ["DC_A", "DC_C", "DC_D"]
    assert [o["name"] for o in d["outputs"]] == ["OUT_Y", "OUT_Z"]


def test_blank_rows_are_dropped_but_a_nameless_row_with_something_in_it_is_an_error(gw, alice):
    client, token = alice
    rows = [{"name": "A"}, {"name": "", "type": "integer", "default": ""},  # blank: dropped
            {"name": "  ", "description": "what it is"}, {"name": "D", "type": "integer", "default": "x"}]
    outputs = [{"name": "", "description": "an output"}]
    r = client.post("/templates/new", data=form(token, "blank", rows, outputs))
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert not Template.select().where(Template.name == "blank").exists()
    # Shown again without the blank row: the nameless one is row 2 now, its error beside it.
    assert [name for _, name in page_rows(page, "inputs")] == ["A", "", "D"]
    assert re.search(r'id="inputs-1-name"[^>]*aria-invalid="true" aria-describedby="err-inputs-1-name"',
                     page, re.S)
    assert 'id="err-inputs-1-name">Give this input a name, or remove the row.</span>' in page
    assert "what it is</textarea>" in page  # what was typed is kept
    assert 'id="err-outputs-0-name">Give this output a name, or remove the row.' in page
    # Row 3's bad default is checked at the same time, in plain words.
    assert 'id="err-inputs-2-default">The default must be a whole number, got &#39;x&#39;.</span>' in page
    assert "inputs[" not in page and "inputs.DC_" not in page
    # The summary at the top counts them and links each to its control.
    summary = page[page.index('id="form-problems"'):page.index("</div>", page.index('id="form-problems"'))]
    assert "Not created: 3 problems, each shown next to its field." in summary
    assert '<a href="#inputs-1-name" data-problem="inputs-1-name">Input 2 name</a>' in summary
    assert '<a href="#inputs-2-default" data-problem="inputs-2-default">Input 3 default</a>' in summary


def test_the_services_own_errors_are_shown_beside_their_field(gw, alice):
    client, token = alice
    r = client.post("/templates/new", data=form(token, "dup", [{"name": "A"}, {"name": "B"}, {"name": "A"}]))
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert '<span class="field-error" id="err-inputs-2-name">DC_A is defined twice.</span>' in page
    assert "Not created: 1 problem, shown next to its field." in page
    r = client.post("/templates/new", data=form(token, "bad name!", [{"name": "A"}], script=""))
    page = r.get_data(as_text=True)
    assert re.search(r'id="err-(name|script)">The (name|script) must', page), page
    assert 'aria-invalid="true"' in page


def test_a_problem_in_an_inputs_settings_is_shown_in_its_settings(gw, alice):
    client, token = alice
    pick = {"name": "PICK", "type": "choice", "choices": " , ", "description": "pick one"}
    r = client.post("/templates/new", data=form(token, "ch", [{"name": "A"}, pick]))
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    start = page.index('id="inputs-1-settings"')
    settings = page[start:page.index("</dialog>", start)]
    # The dialog is open in place (the script opens it as a dialog), the message inside it.
    assert re.match(r'id="inputs-1-settings" aria-labelledby="inputs-1-settings-title" open>', settings)
    assert "Input DC_PICK settings" in settings
    assert 'id="err-inputs-1-choices">List the choices, separated by commas.</span>' in settings
    # The row says so too, for the page with the dialog closed.
    assert re.search(r'id="inputs-1-summary"><span class="field-error">A setting needs fixing.</span> '
                     r'pick one<', page)
    r = client.post("/templates/new", data=form(
        token, "ch", [{"name": "PICK", "type": "choice", "choices": "a, a"}]))
    assert 'id="err-inputs-0-choices">Choices must be distinct.' in r.get_data(as_text=True)


def test_add_another_row_without_javascript_shows_the_form_again_and_saves_nothing(gw, alice):
    client, token = alice
    page = client.get("/templates/new").get_data(as_text=True)
    assert page_rows(page, "inputs") == [("0", "")] and page_rows(page, "outputs") == [("0", "")]
    assert 'name="add_row" value="inputs"' in page and "Add another input" in page
    data = form(token, "more", [{"name": "A", "description": "first"}], [{"name": ""}], add_row="inputs",
                files=[(io.BytesIO(b"x"), "f.txt")])
    r = client.post("/templates/new", data=data, content_type="multipart/form-data")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert page_rows(page, "inputs") == [("0", "A"), ("1", "")]
    assert page_rows(page, "outputs") == [("0", "")]  # the blank output row stays, one of it
    assert "first</textarea>" in page and 'id="form-problems"' not in page
    assert "Choose the support files again" in page  # a browser cannot keep a chosen file
    r = client.post("/templates/new", data=form(token, "more", [{"name": "A"}], [{"name": ""}],
                                                add_row="outputs"))
    assert page_rows(r.get_data(as_text=True), "outputs") == [("0", ""), ("1", "")]
    assert not Template.select().where(Template.name == "more").exists()

    # On the edit page too: no new version.
    gw.template(name="kept", environment="base", inputs=[{"name": "DC_K"}])
    tpl = Template.get(Template.name == "kept")
    gw.ok("POST", f"/templates/{tpl.id}/access", 201, json={"user": "alice", "role": "manager"})
    r = client.post(f"/templates/{tpl.id}/edit", data=form(token, "kept", [{"name": "K"}], add_row="inputs"))
    assert r.status_code == 200 and page_rows(r.get_data(as_text=True), "inputs") == [("0", "K"), ("1", "")]
    assert Template.get_by_id(tpl.id).latest_version == 1


def test_one_save_with_files_added_and_removed_and_inputs_changed_is_one_version(gw, alice):
    client, token = alice
    data = form(token, "files", [{"name": "A"}], files=[(io.BytesIO(b"one"), "one.txt"),
                                                         (io.BytesIO(b"two"), "two.txt")])
    assert client.post("/templates/new", data=data, content_type="multipart/form-data").status_code == 302
    tpl = Template.get(Template.name == "files")
    page = client.get(f"/templates/{tpl.id}/edit").get_data(as_text=True)
    assert "saving makes version 2" in page and 'value="one.txt"' in page

    data = form(token, "files", [{"name": "A", "type": "integer", "default": "4"}, {"name": "B"}],
                files=[(io.BytesIO(b"three"), "three.txt")], remove_files="one.txt")
    r = client.post(f"/templates/{tpl.id}/edit", data=data, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)
    versions = list(TemplateVersion.select().where(TemplateVersion.template == tpl)
                    .order_by(TemplateVersion.version))
    assert [v.version for v in versions] == [1, 2]
    v2 = versions[1]
    assert [f["name"] for f in v2.files] == ["three.txt", "two.txt"]
    assert [(i["name"], i["type"], i["default"]) for i in v2.inputs] == [("DC_A", "integer", "4"),
                                                                         ("DC_B", "string", None)]
    assert Template.get_by_id(tpl.id).latest_version == 2
    assert client.get(f"/templates/{tpl.id}").status_code == 200

    # A refused save makes none, and shows the form again with the removal still ticked.
    data = form(token, "files", [{"name": "A", "type": "integer", "default": "four"}], remove_files="two.txt")
    r = client.post(f"/templates/{tpl.id}/edit", data=data)
    assert r.status_code == 400
    assert 'value="two.txt" checked' in r.get_data(as_text=True)
    assert Template.get_by_id(tpl.id).latest_version == 2


def test_update_template_makes_one_version_for_files_and_removals_together(gw):
    """The service itself: uploads, removals and new inputs in one call are version N+1."""
    gw.template(name="svc", environment="base", inputs=[{"name": "DC_A"}])
    tpl = Template.get(Template.name == "svc")
    job_templates.add_files(gw.ctx, gw.admin, tpl, [("old.txt", b"old"), ("keep.txt", b"keep")])
    assert tpl.latest_version == 2
    body = {**job_templates.version_dict(job_templates.get_version(tpl)), "remove_files": ["old.txt"],
            "inputs": [{"name": "DC_A"}, {"name": "DC_B", "type": "integer", "default": 2}]}
    body.pop("files")
    tv = job_templates.update_template(gw.ctx, gw.admin, tpl, body, [("new.txt", b"new")])
    assert tv.version == 3
    assert TemplateVersion.select().where(TemplateVersion.template == tpl).count() == 3
    assert [f["name"] for f in tv.files] == ["keep.txt", "new.txt"]
    assert [i["name"] for i in tv.inputs] == ["DC_A", "DC_B"]


def test_html_in_descriptions_and_choices_is_text(gw, alice):
    client, token = alice
    evil = '<img src=x onerror=alert(1)>"'
    r = client.post("/templates/new", data=form(
        token, "evil", [{"name": "C", "type": "choice", "choices": f"a,{evil}", "description": evil}],
        [{"name": "O", "description": evil}], description=evil))
    assert r.status_code == 302, r.get_data(as_text=True)
    tpl = Template.get(Template.name == "evil")
    typed = [{"name": "C", "type": "choice", "choices": f"a,{evil}", "description": evil, "default": evil},
             {"name": evil}]
    refused = client.post(f"/templates/{tpl.id}/edit", data=form(token, "evil", typed))
    assert refused.status_code == 400
    # The edit form, and the form shown again after a refusal with what was typed:
    edit = client.get(f"/templates/{tpl.id}/edit").get_data(as_text=True)
    for page in (edit, refused.get_data(as_text=True)):
        assert "<img" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert saved(gw, "evil")["inputs"][0]["choices"] == ["a", evil]


def test_the_form_needs_its_csrf_token(gw, alice):
    client, token = alice
    data = form(token, "nocsrf", [{"name": "A"}])
    del data["csrf_token"]
    r = client.post("/templates/new", data=data)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert not Template.select().where(Template.name == "nocsrf").exists()
    gw.template(name="theirs", environment="base")
    tpl = Template.get(Template.name == "theirs")
    gw.ok("POST", f"/templates/{tpl.id}/access", 201, json={"user": "alice", "role": "manager"})
    data = form(token, "theirs", [{"name": "A"}], csrf_token="forged")
    assert client.post(f"/templates/{tpl.id}/edit", data=data).status_code == 400
    assert Template.get_by_id(tpl.id).latest_version == 1


def test_a_member_of_a_template_cannot_open_or_post_its_edit_form(gw, alice):
    client, token = alice
    gw.template(name="guarded", environment="base", inputs=[{"name": "DC_A"}])
    tpl = Template.get(Template.name == "guarded")
    gw.ok("POST", f"/templates/{tpl.id}/access", 201, json={"user": "alice", "role": "member"})
    assert client.get(f"/templates/{tpl.id}").status_code == 200  # she sees and may run it
    r = client.get(f"/templates/{tpl.id}/edit")
    assert r.status_code == 403 and "DC_A" not in r.get_data(as_text=True)
    r = client.post(f"/templates/{tpl.id}/edit", data=form(token, "guarded", [{"name": "EVIL"}]))
    assert r.status_code == 403
    more = form(token, "guarded", [{"name": "A"}], add_row="inputs")
    r = client.post(f"/templates/{tpl.id}/edit", data=more)
    assert r.status_code == 403
    assert Template.get_by_id(tpl.id).latest_version == 1
    # Someone who cannot see it at all learns nothing about it.
    bob, bob_token = session(gw, gw.bob)
    assert bob.get(f"/templates/{tpl.id}/edit").status_code == 404


def test_hostile_row_numbers_and_names_are_refused_plainly(gw, alice):
    client, token = alice
    data = form(token, "huge", [{"name": "A"}])
    data[f"inputs-{'9' * 5000}-name"] = "B"  # not a row: too long a number to be one
    data["inputs-0-__class__"] = "x"
    r = client.post("/templates/new", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)
    assert [i["name"] for i in saved(gw, "huge")["inputs"]] == ["DC_A"]
    rows = [{"name": "a b;rm"}, {"name": "ok", "type": "nope"}]
    r = client.post("/templates/new", data=form(token, "bad", rows))
    assert r.status_code == 400
    page = unescape(r.get_data(as_text=True))
    assert "The name must start with DC_ followed by letters, digits or '_' (got 'DC_a b;rm')" in page
    assert "The type must be one of" in page


def test_environment_versions_name_their_environment_for_the_filter(gw, alice):
    client, _ = alice
    page = client.get("/templates/new").get_data(as_text=True)
    assert '<option value="">latest</option>' in page
    assert re.search(r'<option value="1" data-env="base"\s*>base · 1</option>', page)
    assert re.search(r'<option value="2" data-env="other"\s*>other · 2</option>', page)
    # The page's own script and style sheet, nothing inline.
    assert "/static/portal/template_form.js" in page and "/static/portal/template_form.css" in page
    assert "<script>" not in page and "style=" not in page
