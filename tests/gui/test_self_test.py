"""`main.py --self-test`, the check every frozen build runs in CI, works from source too."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_self_test_trains_through_the_window_and_exits_0(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path)}  # nothing may be written to the user's folders
    done = subprocess.run([sys.executable, "main.py", "--self-test"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-test passed" in done.stdout and "run folder written" in done.stdout
    assert "clip decoded (10 frames with PyAV" in done.stdout
    assert not os.path.exists(tmp_path / ".config" / "FitStudio")  # settings went to a temporary folder


def test_self_test_failure_exits_1_with_the_reason(monkeypatch, capsys):
    from gui import self_test

    def broken(scratch):
        raise RuntimeError("the plots got 0 batch points")

    monkeypatch.setattr(self_test, "_train_through_the_window", broken)
    assert self_test.run_self_test() == 1
    out = capsys.readouterr().out
    assert "self-test FAILED" in out and "0 batch points" in out
