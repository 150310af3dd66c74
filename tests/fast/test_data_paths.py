"""gateway.data on its own: new folders and downloads stay inside the experiment even
when a folder is swapped for a link after the path was checked (Members' jobs write in
experiments too), and sizes read as people read them."""
from __future__ import annotations

import os

import pytest

from gateway import data
from gateway.errors import Conflict, NotFound, ValidationError
from gateway.models import Experiment
from gateway.web.portal.views_projects import human_size


@pytest.fixture
def world(fake_gw, tmp_path):
    """Experiment proj/exp (admin's), and a folder outside it holding a secret."""
    exp_dir = fake_gw.experiment()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    return fake_gw, Experiment.get(Experiment.name == "exp"), exp_dir, outside


def checked_too_early(monkeypatch):
    """As if every path was checked before a job swapped a folder for a link: the check
    passes whatever is on disk now."""
    monkeypatch.setattr(data, "resolve_inside",
                        lambda base, relative, field, must_exist=True: base.resolve() / relative)


def test_make_folder_does_not_follow_a_link_swapped_in(world, monkeypatch):
    gw, exp, exp_dir, outside = world
    os.symlink(outside, exp_dir / "raw")
    checked_too_early(monkeypatch)
    with pytest.raises(ValidationError) as e:
        data.make_folder(gw.ctx, gw.admin, exp, "raw/new")
    assert e.value.field == "path"
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_open_file_does_not_follow_a_link_swapped_in(world, monkeypatch):
    gw, exp, exp_dir, outside = world
    os.symlink(outside, exp_dir / "raw")
    os.symlink(outside / "secret.txt", exp_dir / "plain.txt")
    checked_too_early(monkeypatch)
    for path in ("raw/secret.txt", "plain.txt"):
        with pytest.raises(NotFound) as e:
            data.open_file(gw.ctx, gw.admin, exp, path)
        assert e.value.field == "path"


def test_make_folder_and_open_file(world):
    gw, exp, exp_dir, _ = world
    assert data.make_folder(gw.ctx, gw.admin, exp, " a/b/ ") == {"path": "a/b"}
    assert (exp_dir / "a/b").is_dir()
    with pytest.raises(Conflict):
        data.make_folder(gw.ctx, gw.admin, exp, "a/b")
    for bad in ("", "/", "a//c", "./a", "a/./c", 7, None, "/tmp/x", "tab\there"):
        with pytest.raises(ValidationError) as e:
            data.make_folder(gw.ctx, gw.admin, exp, bad)
        assert e.value.field == "path", bad
    (exp_dir / "a/b/f.txt").write_bytes(b"content")
    with data.open_file(gw.ctx, gw.admin, exp, "a/b/f.txt") as f:
        assert f.read() == b"content"
    with pytest.raises(ValidationError):
        data.open_file(gw.ctx, gw.admin, exp, "a/b")
    with pytest.raises(NotFound):
        data.open_file(gw.ctx, gw.admin, exp, "a/b/none.txt")


def test_folder_path_and_processed():
    assert data.in_processed("Processed") and data.in_processed("Processed/tpl-1")
    assert not data.in_processed("") and not data.in_processed("Processed-copy")


def test_folder_path_is_where_the_person_is(world):
    gw, exp, exp_dir, _ = world
    (exp_dir / "raw/day1").mkdir(parents=True)
    assert data.folder_path(gw.ctx, exp, "") == ""
    assert data.folder_path(gw.ctx, exp, "/raw/./day1/") == "raw/day1"
    with pytest.raises(ValidationError):
        data.folder_path(gw.ctx, exp, "raw/../..")


@pytest.mark.parametrize("size, text", [(None, "—"), (0, "0 bytes"), (1, "1 byte"), (1023, "1023 bytes"),
                                        (1536, "1.5 KiB"), (30 * 2**20, "30.0 MiB"), (5 * 2**40, "5.0 TiB"),
                                        (2**60, "1048576.0 TiB")])
def test_sizes(size, text):
    assert human_size(size) == text
