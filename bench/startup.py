"""Start-up time of the window: from spawning `python main.py` to the window's first paint.

    python bench/startup.py [--runs 5]
    python bench/startup.py --frozen dist/FitStudio/FitStudio   # the standalone build instead

Each run starts main.py with FITSTUDIO_STARTUP_PROBE=1 (offscreen Qt unless QT_QPA_PLATFORM is set
otherwise); the app prints "shown <s since process start> main=<s in run_app> tensorflow=<bool>" at
its first paint and quits. Reported: wall time from spawn to that line (what a person waits), the
child's own measure from its kernel start time, and whether TensorFlow had been imported (it must
not have been: it loads in the background).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SECONDS = 2.0


def one_run(command: list[str]) -> tuple[float, float, bool]:
    env = {**os.environ, "FITSTUDIO_STARTUP_PROBE": "1"}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        for line in child.stdout:
            if line.startswith("shown "):
                wall = time.perf_counter() - started
                fields = dict(part.split("=") for part in line.split()[2:])
                return wall, float(line.split()[1]), fields["tensorflow"] == "True"
        raise RuntimeError(f"{command[0]} exited with {child.wait()} before showing the window")
    finally:
        child.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--frozen", metavar="EXECUTABLE", help="time this standalone build instead")
    args = parser.parse_args()
    command = [os.path.abspath(args.frozen)] if args.frozen else [args.python, "main.py"]
    print(f"launching: {' '.join(command)}")
    one_run(command)  # warm the file cache, as a second launch would be
    rows = [one_run(command) for _ in range(args.runs)]
    print(f"{'run':>4}  {'spawn->shown (s)':>16}  {'child clock (s)':>15}  tensorflow imported")
    for index, (wall, own, tf_loaded) in enumerate(rows, start=1):
        print(f"{index:>4}  {wall:>16.3f}  {own:>15.3f}  {tf_loaded}")
    median = statistics.median(wall for wall, _, _ in rows)
    any_tf = any(tf for _, _, tf in rows)
    print(f"median spawn->shown: {median:.3f} s (target < {TARGET_SECONDS:.1f} s: "
          f"{'met' if median < TARGET_SECONDS else 'NOT met'}); tensorflow imported at show: {any_tf}")
    return 0 if median < TARGET_SECONDS and not any_tf else 1


if __name__ == "__main__":
    sys.exit(main())
