"""Hand-picked runs of one template side by side, on FakeSlurm: the API (JSON and CSV),
the portal's page and the Jobs table's "Compare selected", and `gateway compare`.
What a hostile person could try is answered here too: jobs they may not see (told
exactly as jobs that do not exist), huge and repeated id lists, non-numbers, formulas
and markup in a job's inputs and OUT_ values."""
from __future__ import annotations

import csv
import io
import threading

import pytest
from portal_client import get_page, session
from werkzeug.serving import make_server

from gateway.job_paths import OUTPUTS_FILE
from gateway.models import Job

INPUTS = [{"name": "DC_N", "type": "integer", "default": 1},
          {"name": "DC_WORD", "type": "string", "default": "x"},
          {"name": "DC_MODE", "type": "string", "default": "fast"}]
HOSTILE_OUT = '=HYPERLINK("http://evil.example","click")'
SCRIPT_OUT = '<script>alert("out")</script>'


@pytest.fixture
def gw(fake_gw):
    fake_gw.environment()
    fake_gw.experiment()
    fake_gw.tpl = fake_gw.template(name="fit", inputs=INPUTS, outputs=[{"name": "OUT_SCORE"}],
                                   script="echo fit\n")
    fake_gw.other = fake_gw.template(name="clean", script="echo clean\n")
    return fake_gw


def finished_run(gw, template=None, outputs: bytes = b"", exit_code=0, elapsed=3600, place=("proj", "exp"),
                 **inputs):
    """A run of ``template`` (default fit) in ``place`` (project, experiment) that ended,
    having set ``outputs`` (NAME=value, NUL-separated, as a job's outputs file holds them)."""
    job = gw.run(template or gw.tpl["id"], inputs=inputs, project=place[0], experiment=place[1])
    (gw.ctx.job_paths(job["id"]).base / OUTPUTS_FILE).write_bytes(outputs)
    gw.slurm.start(job["slurm_job_id"])
    gw.slurm.finish(job["slurm_job_id"], exit_code=exit_code, elapsed=elapsed)
    gw.tick()
    return job["id"]


def refused(gw, ids, status=400, token=None) -> str:
    r = gw.api("GET", f"/jobs/compare?ids={ids}", token=token)
    assert r.status_code == status, (r.status_code, r.json)
    assert r.json["field"] == "ids", r.json
    return r.json["error"]


def test_the_differing_inputs_are_columns_the_shared_ones_said_once(gw):
    a = finished_run(gw, outputs=b"OUT_SCORE=0.5\0", DC_N=1, DC_WORD="same")
    b = finished_run(gw, outputs=b"OUT_SCORE=0.9\0OUT_EXTRA=yes\0", exit_code=2, elapsed=7200,
                     DC_N=2, DC_WORD="same")
    c = finished_run(gw, outputs=b"", DC_N=3, DC_WORD="same")
    # Rows in the order given; the same job twice is compared once (its first place).
    got = gw.ok("GET", f"/jobs/compare?ids={c},{a}, {b},{a}")
    assert got["template"] == {"id": gw.tpl["id"], "name": "fit"}
    assert got["jobs"] == [c, a, b]
    assert got["same"] == {"DC_WORD": "same", "DC_MODE": "fast"}
    assert got["inputs"] == ["DC_N"]
    # The template's declared outputs first, then any other a job set.
    assert got["outputs"] == ["OUT_SCORE", "OUT_EXTRA"]
    assert got["columns"] == ["job", "version", "status", "DC_N", "OUT_SCORE", "OUT_EXTRA", "exit_code",
                              "cpu_hours", "gpu_hours"]
    assert got["rows"] == [
        [c, 1, "Completed", "3", None, None, 0, 1.0, 0.0],
        [a, 1, "Completed", "1", "0.5", None, 0, 1.0, 0.0],
        [b, 1, "Failed", "2", "0.9", "yes", 2, 2.0, 0.0]]
    # Repeated ids= (as the Jobs table's checkboxes send them) work the same.
    assert gw.ok("GET", f"/jobs/compare?ids={c}&ids={a}&ids={b}")["rows"] == got["rows"]


def test_runs_of_different_versions_compare_with_the_version_as_a_column(gw):
    old = finished_run(gw, DC_N=1)
    gw.ok("PUT", f"/templates/{gw.tpl['id']}", json={
        "script": "echo v2\n", "environment": "base", "language": "bash",
        "inputs": [*INPUTS, {"name": "DC_NEW", "type": "string", "default": "n"}],
        "outputs": [{"name": "OUT_SCORE"}, {"name": "OUT_V2"}]})
    new = finished_run(gw, DC_N=1)
    got = gw.ok("GET", f"/jobs/compare?ids={old},{new}")
    assert got["same"] == {"DC_N": "1", "DC_WORD": "x", "DC_MODE": "fast"}
    assert got["inputs"] == ["DC_NEW"]  # the old run has no such input: it differs
    assert got["outputs"] == ["OUT_SCORE", "OUT_V2"]  # the newest version's, in its order
    assert [row[:4] for row in got["rows"]] == [[old, 1, "Completed", None], [new, 2, "Completed", "n"]]


def test_bad_id_lists_are_refused_naming_the_field(gw):
    a = finished_run(gw, DC_N=1)
    b = finished_run(gw, DC_N=2)
    theirs = finished_run(gw, template=gw.other["id"])
    assert refused(gw, f"{a},{theirs}") == \
        f"jobs {a} and {theirs} are runs of different templates (fit, clean)"
    assert refused(gw, f"{a},77", 404) == "job 77 not found"
    assert refused(gw, f"77,{a},78", 404) == "jobs 77, 78 not found"
    assert "at least 2 different jobs" in refused(gw, f"{a}")
    # The same job three times is one job: refused as too few, not compared with itself.
    assert refused(gw, f"{a},{a},{a}") == \
        f"pick at least 2 different jobs to compare (only job {a} was given)"
    assert "at least 2" in refused(gw, "")
    assert "at least 2" in gw.api("GET", "/jobs/compare").json["error"]
    for bad in ("x", "1.5", "-3", "0", "١٢", "１２", str(2**64), "%3Cb%3E"):
        error = refused(gw, f"{a},{bad}")
        assert "is not a job number" in error, (bad, error)
    # A huge list is refused by its length, before any of it is looked up.
    assert refused(gw, ",".join(str(i) for i in range(1, 502))) == \
        "compare at most 500 jobs at once; 501 were given"
    assert "at most 500" in refused(gw, ",".join([str(a)] * 600))
    # A plain sbatch script is no run of a template.
    plain = gw.ok("POST", "/jobs/sbatch", 201, json={"script": "#!/bin/bash\ntrue\n", "license": "test-lab",
                                                   "project": "proj", "experiment": "exp"})
    assert "plain sbatch script" in refused(gw, f"{a},{plain['id']}")
    assert gw.ok("GET", f"/jobs/compare?ids={a},{b}")["jobs"] == [a, b]


def test_a_job_you_may_not_see_is_told_as_one_that_does_not_exist(gw):
    mine = [finished_run(gw, DC_N=n) for n in (1, 2)]
    missing = Job.select().count() + 100
    for token in (gw.bob_token, gw.alice_token):
        hidden = gw.api("GET", f"/jobs/compare?ids={mine[0]},{missing}", token=token)
        absent = gw.api("GET", f"/jobs/compare?ids={missing},{mine[0]}", token=token)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json == {"error": f"jobs {mine[0]}, {missing} not found", "field": "ids"}
        assert absent.json == {"error": f"jobs {missing}, {mine[0]} not found", "field": "ids"}
        # Not even whether two hidden jobs are runs of one template shows.
        assert gw.api("GET", f"/jobs/compare?ids={mine[0]},{mine[1]}", token=token).status_code == 404
        r = gw.api("GET", f"/jobs/compare.csv?ids={mine[0]},{mine[1]}", token=token)
        assert r.status_code == 404 and b"fit" not in r.data
    # A run bob may see next to a hidden run of another template: only "not found",
    # never "different templates".
    gw.experiment("private", "exp")
    hidden = finished_run(gw, place=("private", "exp"), DC_N=5)
    seen = finished_run(gw, template=gw.other["id"])
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "bob", "role": "viewer"})
    assert refused(gw, f"{seen},{hidden}", 404, token=gw.bob_token) == f"job {hidden} not found"
    assert gw.api("GET", f"/jobs/compare?ids={seen},{hidden}").json["error"].endswith("(clean, fit)")


def test_a_viewer_of_the_experiment_compares_its_jobs(gw):
    ids = [finished_run(gw, outputs=b"OUT_SCORE=%d\0" % n, DC_N=n) for n in (1, 2)]
    gw.ok("POST", "/projects/proj/experiments/exp/access", 201, json={"user": "bob", "role": "viewer"})
    got = gw.ok("GET", f"/jobs/compare?ids={ids[0]},{ids[1]}", token=gw.bob_token)
    assert [row[4] for row in got["rows"]] == ["1", "2"]
    client, _ = session(gw, gw.bob)
    page = get_page(client, f"/jobs/compare?ids={ids[0]},{ids[1]}")
    assert f'href="/jobs/{ids[0]}"' in page and "Download CSV" in page
    assert "<form" not in page.split('<main id="main">', 1)[1]  # nothing to change here
    # He may not see the template itself: its name is shown, not linked.
    assert f'href="/templates/{gw.tpl["id"]}"' not in page


def test_the_csv_keeps_formulas_as_text(gw):
    a = finished_run(gw, outputs=f"OUT_SCORE={HOSTILE_OUT}\0OUT_NEG=-3.5\0".encode(), DC_N=1,
                     DC_WORD="=cmd|' /C calc'!A0")
    b = finished_run(gw, outputs=b"OUT_SCORE=@SUM(A1)\0", DC_N=2, DC_WORD="+1+1")
    r = gw.api("GET", f"/jobs/compare.csv?ids={a},{b}")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == 'attachment; filename="fit-2-runs.csv"'
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["job"] for row in rows] == [str(a), str(b)]
    assert rows[0]["OUT_SCORE"] == "'" + HOSTILE_OUT and rows[1]["OUT_SCORE"] == "'@SUM(A1)"
    assert rows[0]["DC_WORD"] == "'=cmd|' /C calc'!A0" and rows[1]["DC_WORD"] == "'+1+1"
    assert rows[0]["OUT_NEG"] == "-3.5"  # a number stays a number
    # The inputs every run shares are in the file too (after the table's own columns).
    assert list(rows[0])[-1] == "DC_MODE" and rows[1]["DC_MODE"] == "fast"


def test_the_sweep_results_csv_is_unchanged_by_the_shared_writer(gw):
    """Byte for byte what sweeps.results_csv wrote before it used results_table."""
    tpl = gw.template(name="sweepme", inputs=[{"name": "DC_N", "type": "integer", "default": 1},
                                              {"name": "DC_WORD", "type": "string", "default": "x"}],
                      outputs=[{"name": "OUT_R"}], script="echo\n")
    s = gw.ok("POST", f"/templates/{tpl['id']}/sweeps", 201, json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
        "software_disk_gb": 1, "inputs": {"DC_N": {"values": [-1, 2]},
                                          "DC_WORD": {"values": ["=1+1", 'a,"b"']}}})
    base = s["array_job_ids"][0]
    outs = [b'OUT_R==HYPERLINK("http://x")\0OUT_EXTRA=-3.5\0', b"OUT_R=<script>x</script>\0OUT_Z=@SUM(A1)\0"]
    for i, job in enumerate(s["jobs"][:2]):
        (gw.ctx.job_paths(job["id"]).base / OUTPUTS_FILE).write_bytes(outs[i])
        gw.slurm.start(f"{base}_{i}")
        gw.slurm.finish(f"{base}_{i}", exit_code=i, elapsed=4000 + i)
    gw.tick()
    j = [job["id"] for job in s["jobs"]]
    assert gw.api("GET", f"/sweeps/{s['id']}/results.csv").get_data(as_text=True) == (
        "task,job,status,DC_N,DC_WORD,OUT_R,OUT_EXTRA,OUT_Z,exit_code,cpu_hours,gpu_hours\r\n"
        f"0,{j[0]},Completed,-1,'=1+1,\"'=HYPERLINK(\"\"http://x\"\")\",-3.5,,0,1.1111,0.0\r\n"
        f"1,{j[1]},Failed,-1,\"a,\"\"b\"\"\",<script>x</script>,,'@SUM(A1),1,1.1114,0.0\r\n"
        f"2,{j[2]},Pending,2,'=1+1,,,,,0.0,0.0\r\n"
        f"3,{j[3]},Pending,2,\"a,\"\"b\"\"\",,,,,0.0,0.0\r\n")


def test_the_page_shows_markup_from_jobs_as_text(gw):
    a = finished_run(gw, outputs=f"OUT_SCORE={SCRIPT_OUT}\0".encode(), DC_N=1,
                     DC_WORD='<img src=x onerror="alert(1)">')
    b = finished_run(gw, outputs=b"OUT_SCORE=2\0", DC_N=2, DC_WORD="<b>bold</b>")
    client, _ = session(gw, gw.admin)
    page = get_page(client, f"/jobs/compare?ids={a},{b}")
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;out&#34;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert "<b>bold" not in page
    # Each job links to its details; the CSV link carries the same runs.
    assert f'<a href="/jobs/{a}">#{a}</a>' in page
    assert f'href="/api/v1/jobs/compare.csv?ids={a},{b}"' in page
    assert 'id="results"' in page and 'class="link sort"' in page
    assert 'id="same-inputs"' in page and "DC_MODE" in page
    assert "style=" not in page and "<script>" not in page  # strict CSP: no inline anything


def test_the_jobs_table_picks_runs_to_compare(gw):
    ids = [finished_run(gw, DC_N=n) for n in (1, 2)]
    client, _ = session(gw, gw.admin)
    table = get_page(client, "/jobs?status=Completed")
    assert '<form class="inline" id="compare-form" method="get" action="/jobs/compare"' in table
    for i in ids:
        assert (f'<input type="checkbox" name="ids" value="{i}" form="compare-form" '
                f'aria-label="Select job {i}">') in table
    # Picking too few is said on the table it was picked in (its filters kept)...
    r = client.get(f"/jobs/compare?ids={ids[0]}", headers={"Referer": "http://localhost/jobs?status=Completed"})
    assert r.status_code == 302 and r.headers["Location"] == "/jobs?status=Completed"
    assert "Cannot compare: pick at least 2 different jobs" in get_page(client, "/jobs?status=Completed")
    # ...and a Referer that is not our Jobs table is never followed.
    for referer in ("http://evil.example/jobs?x=1", "http://localhost/templates", "//evil.example/jobs"):
        r = client.get("/jobs/compare", headers={"Referer": referer})
        assert r.status_code == 302 and r.headers["Location"] == "/jobs", referer
    r = client.get(f"/jobs/compare?ids={ids[0]}&ids={ids[1]}")
    assert r.status_code == 200 and "Compare 2 runs of" in r.get_data(as_text=True)


def test_comparing_many_runs_costs_a_fixed_number_of_queries(gw):
    from test_query_counts import counted

    from gateway.comparison import compare

    ids = [finished_run(gw, DC_N=n) for n in range(1, 7)]
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "bob", "role": "viewer"})
    for who in (gw.admin, gw.bob):
        with counted() as few:
            compare(gw.ctx, who, f"{ids[0]},{ids[1]}")
        with counted() as many:
            compare(gw.ctx, who, [str(i) for i in ids])
        assert many.n == few.n == 1, many.sql


@pytest.fixture
def served_api(gw, monkeypatch):
    """The fake gateway over real HTTP, for the command-line client."""
    server = make_server("127.0.0.1", 0, gw.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GATEWAY_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GATEWAY_TOKEN", gw.token)
    yield gw
    server.shutdown()


def test_gateway_compare_on_the_command_line(served_api, capsys):
    from gateway.client import commands

    gw = served_api
    a = finished_run(gw, outputs=b"OUT_SCORE=0.5\0", DC_N=1)
    b = finished_run(gw, outputs=b"OUT_SCORE=\x1b[31mred\x1b]0;title\x07\0", DC_N=22)
    assert commands.main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 runs of fit"
    assert out[1] == "same in all: DC_MODE=fast  DC_WORD=x"
    assert out[2].split() == ["job", "version", "status", "DC_N", "OUT_SCORE", "exit_code", "cpu_hours",
                              "gpu_hours"]
    assert out[3].split() == [str(a), "1", "Completed", "1", "0.5", "0", "1.0", "0.0"]
    # What a job printed reaches no terminal as an escape sequence.
    assert "\x1b" not in "\n".join(out) and "?[31mred?]0;title?" in out[4]
    assert commands.main(["compare", str(a), str(b), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["DC_N"] for r in rows] == ["1", "22"]
    assert commands.main(["compare", str(a), "999"]) == 1
    assert "ids: job 999 not found" in capsys.readouterr().err
