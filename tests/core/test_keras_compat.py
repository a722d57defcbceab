"""keras_compat: plain Keras still fails under a real 2-worker MultiWorkerMirroredStrategy, in the two
places the module fixes; with the fixes both workers train in step. The day this test fails on
"Keras no longer needs", delete core/training/distribution/keras_compat.py and its install() calls."""

import json
import os
import socket
import subprocess
import sys

import keras
import pytest

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mwms_probe.py")
TIMEOUT_SECONDS = 150


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_two_workers() -> list[dict[str, dict]]:
    ports = ",".join(str(port) for port in free_ports(2))
    workers = [
        subprocess.Popen(
            [sys.executable, PROBE, str(rank), ports],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for rank in (0, 1)
    ]
    outcomes = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=TIMEOUT_SECONDS)
            assert worker.returncode == 0, err[-2000:]
            outcomes.append({line["fixes"]: line for line in map(json.loads, out.splitlines())})
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
    return outcomes


@pytest.mark.timeout(TIMEOUT_SECONDS + 60)
def test_multi_worker_fit_needs_both_fixes_and_works_with_them():
    outcomes = run_two_workers()
    no_longer_needed = f"Keras {keras.__version__} no longer needs this fix: remove it from keras_compat"
    for worker in outcomes:
        assert worker["none"]["error"], no_longer_needed
        assert "Attempt to convert a value (PerReplica" in worker["none"]["error"]
        assert worker["symbolic-build"]["error"], no_longer_needed
        assert "Invalid reduction dimension 0 for input with 0" in worker["symbolic-build"]["error"]
        assert worker["both"]["error"] is None
    losses = [worker["both"]["losses"] for worker in outcomes]
    assert losses[0] == losses[1] and len(losses[0]) == 2  # one model, trained in step on both workers
