"""Input is bounded before any work: request bodies before parsing, uploads by their
own limit without leaving a temporary file, and OUT_ values a job leaves (hostile:
huge, with NULs, not UTF-8) never break a job's record or its status."""
from __future__ import annotations

import http.client
import json
from dataclasses import replace
from urllib.parse import urlparse

import pytest

from gateway.inputs import MAX_OUTPUT_VALUE
from gateway.web.common import MAX_BODY_BYTES


def test_a_json_body_over_the_limit_is_refused_before_it_is_parsed(gw):
    big = json.dumps({"name": "x", "script": "#" * (MAX_BODY_BYTES + 10)})
    r = gw.api("POST", "/templates", data=big, content_type="application/json")
    assert r.status_code == 413 and r.json["field"] == "body", r.json
    r = gw.api("POST", "/jobs/sbatch", data=big, content_type="application/json")
    assert r.status_code == 413 and r.json["field"] == "body"


def test_a_chunked_body_without_a_length_is_bounded_too(gw, server):
    """Through the real server, a body sent in chunks (no Content-Length) stops at the
    limit instead of being read whole."""
    url = urlparse(server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)

    def chunks():
        yield b'{"name": "x", "script": "'
        for _ in range(MAX_BODY_BYTES // 2**16 + 2):
            yield b"#" * 2**16
        yield b'"}'

    conn.request("POST", "/api/v1/templates", body=chunks(), encode_chunked=True,
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {gw.token}"})
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["field"] == "body"


def test_an_upload_over_its_limit_leaves_no_file(gw):
    from gateway import create_app
    from gateway.context import Context

    exp = gw.experiment()
    small = Context(replace(gw.config, max_upload_mb=1), gw.ctx.slurm)
    app = create_app(small.config, context=small)
    client = app.test_client()
    r = client.put("/api/v1/projects/proj/experiments/exp/files/raw/big.bin", data=b"x" * (2 * 2**20 + 1),
                   headers=gw.headers())
    assert r.status_code == 413
    # Streamed without a length (chunked), the gateway's own count stops it.
    from gateway import data
    from gateway.errors import PayloadTooLarge
    from gateway.models import Experiment

    with pytest.raises(PayloadTooLarge):
        data.write_file(small, gw.admin, Experiment.get(), "raw/big.bin", _Stream(b"x" * (2 * 2**20 + 1)))
    assert not [p for p in exp.rglob("*") if p.is_file()]  # nothing, not even .big.bin.upload
    ok = client.put("/api/v1/projects/proj/experiments/exp/files/raw/small.bin", data=b"ok",
                    headers=gw.headers())
    assert ok.status_code == 201 and (exp / "raw" / "small.bin").read_bytes() == b"ok"


class _Stream:
    """A request body of unknown length (like a chunked upload)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n=-1):
        n = len(self.data) - self.pos if n is None or n < 0 else n
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


HOSTILE_PY = r"""
import os
OUT_NUL = "before\x00OUT_FORGED=yes"
OUT_HUGE = "y" * (MAX + 10)
os.environ["OUT_ENV"] = "fine"
""".replace("MAX", str(MAX_OUTPUT_VALUE))

HOSTILE_BASH = r"""
OUT_BYTES="$(printf 'caf\351 \377')"
OUT_OK=yes
"""


def test_hostile_out_values_are_bounded_and_never_change_the_status(gw):
    gw.environment()
    gw.experiment()
    py = gw.template(name="py", language="python", script=HOSTILE_PY, python_executable="python3",
                     outputs=[{"name": n} for n in ("OUT_NUL", "OUT_HUGE", "OUT_ENV")])
    job = gw.wait(gw.run(py["id"])["id"])
    assert job["status"] == "Completed", job
    values = job["output_variables"]
    assert values["OUT_NUL"] == "beforeOUT_FORGED=yes" and "OUT_FORGED" not in values
    assert len(values["OUT_HUGE"]) == MAX_OUTPUT_VALUE and values["OUT_ENV"] == "fine"
    assert any(n.startswith("OUT_HUGE: longer than") for n in job["notes"]), job["notes"]
    sh = gw.template(name="sh", script=HOSTILE_BASH, outputs=[{"name": "OUT_BYTES"}, {"name": "OUT_OK"}])
    job = gw.wait(gw.run(sh["id"])["id"])
    assert job["status"] == "Completed" and job["output_variables"]["OUT_OK"] == "yes"
    assert job["output_variables"]["OUT_BYTES"].startswith("caf\ufffd")
