"""atomic_write: the target is replaced whole or not at all, and writers never share a temp file."""

from __future__ import annotations

from pathlib import Path

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


def test_output_folders_are_claimed_with_an_exclusive_mkdir(tmp_path, monkeypatch):
    """A taken name (another launcher's folder, even with the same random suffix) is never
    handed out again: the claim is an ``os.mkdir`` that fails on an existing folder."""
    import secrets

    from cryptotrade import io

    drawn = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(drawn))
    monkeypatch.setattr(io, "_claimed", {})
    base = tmp_path / "outputs" / "12-00-00"
    first = io.claim_folder(base)
    assert first == f"{base}-aaaaaa" and Path(first).is_dir()
    (Path(first) / "run_id").write_text("another launcher's run\n")
    monkeypatch.setattr(io, "_claimed", {})  # a second process: same second, same suffix drawn
    second = io.claim_folder(base)
    assert second == f"{base}-bbbbbb" and Path(second).is_dir() and not any(Path(second).iterdir())
    assert io.claim_folder(base) == second  # one process resolves its run dir more than once


def test_the_launcher_run_dir_is_a_claimed_folder(tmp_path):
    from hydra import compose, initialize_config_dir

    from cryptotrade.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config", overrides=[f"paths.output_dir={tmp_path}"], return_hydra_config=True
        )
    run_dir = Path(cfg.hydra.run.dir)
    assert run_dir.is_dir() and run_dir.parent.parent == tmp_path  # created when resolved
