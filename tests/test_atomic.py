"""core.atomic: the one atomic writer (whole file or old file, never a partial one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from robot_rewards.core.atomic import atomic_path, temp_path, write_atomic


def test_write_atomic_bytes_and_text_replace_the_old_file(tmp_path):
    p = tmp_path / "sub" / "a.json"
    assert write_atomic(p, b"one") == p  # creates the folder
    assert p.read_bytes() == b"one"
    write_atomic(p, "twö", durable=False)
    assert p.read_text(encoding="utf-8") == "twö"
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.json"]  # no temporary left


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(p) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["x.bin"]
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(p):
            pass
    assert p.read_bytes() == b"old"


def test_atomic_path_keeps_the_suffix_for_writers_that_pick_or_add_one(tmp_path):
    t = temp_path(tmp_path / "d.npz")
    assert t.parent == tmp_path and t.name.startswith(".d.npz.") and t.suffix == ".npz"
    assert temp_path(tmp_path / "d.npz") != t  # unique per call: concurrent writers never share one
    with atomic_path(tmp_path / "d.npz") as tmp:
        np.savez(tmp, x=np.arange(3))  # np.savez appends .npz to names without it
    np.testing.assert_array_equal(np.load(tmp_path / "d.npz")["x"], np.arange(3))
    assert [x.name for x in tmp_path.iterdir()] == ["d.npz"]


def test_a_killed_writer_leaves_the_target_untouched(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("old")
    code = ("import sys, time\nfrom robot_rewards.core.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    f = open(tmp, 'w'); f.write('partial'); f.flush(); print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(p)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert p.read_text() == "old"
    leftovers = [x.name for x in tmp_path.iterdir() if x.name != "t.txt"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".t.txt.")  # hidden, beside the target
