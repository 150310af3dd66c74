"""The command-line client shows the API's errors as the API gave them: the field and
the message, and every problem when a run had several."""
from __future__ import annotations

import json

import requests

from gateway.client.http import api_error


def response(status: int, body) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return r


def test_one_error_names_its_field():
    e = api_error(response(400, {"error": "unknown machine type 'x'", "field": "machine_type"}))
    assert str(e) == "machine_type: unknown machine type 'x'" and e.status == 400


def test_several_problems_are_all_shown():
    body = {"error": "must be a whole number, got 'x'", "field": "inputs.DC_N",
            "problems": [{"field": "inputs.DC_N", "error": "must be a whole number, got 'x'"},
                         {"field": "time_limit_minutes", "error": "must be at most 4320 minutes (72 hours)"}]}
    text = str(api_error(response(400, body)))
    assert text.splitlines() == ["2 problems:", "inputs.DC_N: must be a whole number, got 'x'",
                                 "time_limit_minutes: must be at most 4320 minutes (72 hours)"]


def test_a_body_that_is_not_json_is_shown_short():
    e = api_error(response(502, b"<html>" + b"x" * 1000))
    assert str(e).startswith("HTTP 502: <html>") and len(str(e)) < 230
