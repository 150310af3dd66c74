"""job_files: what a job wrote is read without following links, without blocking on a
FIFO, regular files only, bounded. A hostile job's folder is built here by hand."""
from __future__ import annotations

import os
import socket

import pytest

from gateway import job_files
from gateway.errors import ValidationError


@pytest.fixture
def job(tmp_path):
    """A job folder as a hostile job could leave it, and a secret outside it."""
    secret = tmp_path / "secret_key"
    secret.write_text("top secret\n")
    base = tmp_path / "jobs" / "7"
    (base / "run").mkdir(parents=True)
    out = base / "output"
    (out / "sub").mkdir(parents=True)
    (base / "run" / "job.log").symlink_to(secret)
    os.mkfifo(base / "run" / "exit_status")
    (base / "run" / "outputs.env").write_bytes(b"OUT_A=1\0")
    (out / "result.txt").write_text("42\n")
    (out / "sub" / "deep.txt").write_text("deep\n")
    (out / "leak.txt").symlink_to(secret)
    (out / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(out / "pipe")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(out / "sock"))
    s.close()
    (out / os.fsdecode(b"bad-\xff-name")).write_text("x")
    (base / "escape").symlink_to(tmp_path)  # a link in the middle of a path
    return base


def test_links_fifos_and_folders_are_not_files(job):
    for rel in ("run/job.log", "run/exit_status", "output/leak.txt", "output/linked-dir/secret_key",
                "escape/secret_key", "output/sub", "output/pipe", "output/sock", "output/missing"):
        with pytest.raises(job_files.UnsafeJobFile):
            job_files.open_file(job, rel)
        assert job_files.read_bytes(job, rel, 100) is None
        assert job_files.read_range(job, rel, 0, 100) == b""
        assert job_files.read_tail(job, rel, 100) == b""


def test_paths_that_leave_the_folder_are_refused(job):
    for rel in ("../../secret_key", "/etc/passwd", "output/../../secret_key", "", "a\0b"):
        with pytest.raises(ValidationError):
            job_files.open_file(job, rel)


def test_regular_files_are_read_and_bounded(job):
    assert job_files.read_bytes(job, "run/outputs.env", 100) == b"OUT_A=1\0"
    assert job_files.read_bytes(job, "run/outputs.env", 3) == b"OUT"
    assert job_files.read_range(job, "output/sub/deep.txt", 2, 100) == b"ep\n"
    assert job_files.read_tail(job, "output/result.txt", 2) == b"2\n"
    with job_files.open_file(job, "output/result.txt") as f:
        assert f.read() == b"42\n"


def test_listing_takes_regular_files_and_says_what_it_skipped(job):
    listing = job_files.list_files(job, "output", max_entries=100)
    assert listing.files == [{"path": "result.txt", "size": 3}, {"path": "sub/deep.txt", "size": 5}]
    skipped = "\n".join(listing.skipped)
    for what in ("leak.txt: a link", "linked-dir: a link", "pipe: a FIFO", "sock: a socket",
                 "not UTF-8"):
        assert what in skipped
    assert not listing.truncated


def test_listing_stops_at_the_entry_limit(job):
    many = job / "output" / "many"
    many.mkdir()
    for i in range(50):
        (many / f"f{i:03}").write_text("")
    listing = job_files.list_files(job, "output", max_entries=20)
    assert listing.truncated and len(listing.files) <= 20


def test_deep_nesting_is_cut_off(job):
    d = job / "output"
    for _ in range(job_files.MAX_DEPTH + 5):
        d = d / "d"
        d.mkdir()
    (d / "bottom.txt").write_text("x")
    listing = job_files.list_files(job, "output", max_entries=10_000)
    assert any("nested too deep" in s for s in listing.skipped)
    assert not any(f["path"].endswith("bottom.txt") for f in listing.files)


def test_a_swapped_output_folder_lists_nothing(job, tmp_path):
    os.rename(job / "output", job / "output.real")
    (job / "output").symlink_to(tmp_path)
    assert job_files.list_files(job, "output", 100).files == []


def test_copy_takes_only_what_was_listed_and_is_still_a_file(job, tmp_path):
    listing = job_files.list_files(job, "output", max_entries=100)
    os.unlink(job / "output" / "result.txt")
    (job / "output" / "result.txt").symlink_to(tmp_path / "secret_key")  # swapped after listing
    dest = tmp_path / "Processed" / "run-7"
    dest.parent.mkdir()
    skipped = job_files.copy_files(job, "output", listing, dest)
    assert skipped == ["result.txt: changed while it was copied, skipped"]
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["sub", "sub/deep.txt"]
    assert not any(p.is_symlink() for p in dest.rglob("*"))
