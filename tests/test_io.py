"""atomic_write: the target is replaced whole or not at all, and writers never share a temp file."""

from __future__ import annotations

import pytest

from cryptotrade.io import atomic_write


def test_atomic_write_replaces_the_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "x.bin"
    with atomic_write(target) as fh:
        fh.write(b"one")
    with atomic_write(target, fsync=True) as fh:
        fh.write(b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["x.bin"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_concurrent_writers_get_distinct_temp_files(tmp_path):
    target = tmp_path / "x.bin"
    with atomic_write(target) as a, atomic_write(target) as b:
        assert a.name != b.name
        a.write(b"a")
        b.write(b"b")
    assert target.read_bytes() == b"a"  # the outer writer renamed last
