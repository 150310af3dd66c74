import pytest

from gateway.errors import ValidationError
from gateway.inputs import check_inputs, check_outputs, coerce, parse_outputs_file


def spec(kind, **kw):
    return check_inputs([{"name": "DC_X", "type": kind, **kw}])[0]


def test_names_need_prefix():
    with pytest.raises(ValidationError) as e:
        check_inputs([{"name": "X", "type": "string"}])
    assert e.value.field == "inputs[0].name"
    with pytest.raises(ValidationError) as e:
        check_outputs([{"name": "RESULT"}])
    assert e.value.field == "outputs[0].name"
    with pytest.raises(ValidationError) as e:
        check_inputs([{"name": "DC_A"}, {"name": "DC_A"}])
    assert e.value.field == "inputs[1].name"


@pytest.mark.parametrize("kind,default", [
    ("integer", "ten"), ("integer", 1.5), ("number", "abc"), ("number", float("nan")),
    ("boolean", "maybe"), ("path", "/etc/passwd"), ("path", "../x"),
])
def test_bad_defaults_name_the_field(kind, default):
    with pytest.raises(ValidationError) as e:
        spec(kind, default=default)
    assert e.value.field == "inputs[0].default"


def test_choice_rules():
    with pytest.raises(ValidationError) as e:
        spec("choice", default="a")
    assert e.value.field == "inputs[0].choices"
    with pytest.raises(ValidationError) as e:
        spec("choice", choices=["a", "b"], default="c")
    assert e.value.field == "inputs[0].default"
    assert spec("choice", choices=["a", "b"], default="b")["default"] == "b"


def test_unknown_type():
    with pytest.raises(ValidationError) as e:
        spec("float")
    assert e.value.field == "inputs[0].type"


def test_values_become_environment_strings():
    assert coerce(spec("integer"), "42", "f") == "42"
    assert coerce(spec("integer"), 7, "f") == "7"
    assert coerce(spec("number"), "2.5", "f") == "2.5"
    assert coerce(spec("number"), 3, "f") == "3"
    assert coerce(spec("boolean"), True, "f") == "true"
    assert coerce(spec("boolean"), "no", "f") == "false"
    nasty = "$(rm -rf /); `x` \"'\n"
    assert coerce(spec("string"), nasty, "f") == nasty
    assert coerce(spec("path"), "raw/a.txt", "f") == "raw/a.txt"
    with pytest.raises(ValidationError):
        coerce(spec("string"), "a\0b", "f")
    with pytest.raises(ValidationError):
        coerce(spec("integer"), True, "f")


def test_type_name_is_case_insensitive_for_path():
    assert spec("Path")["type"] == "path"


def test_outputs_file_parsing():
    data = b"OUT_A=1\0OUT_B=multi\nline = x\0JUNK=1\0OUT_C=\0"
    assert parse_outputs_file(data) == {"OUT_A": "1", "OUT_B": "multi\nline = x", "OUT_C": ""}
    assert parse_outputs_file(b"") == {}
