"""How long the runs index takes to list N run folders (issue 13: 1,000 runs in under 1 s).

    python bench/runs_index.py [--runs 1000] [--epochs 50]

Run folders as bench/run_info.py makes them (every file the engine writes, report.json with every
key). Measured, best of 3 passes each:

    cold   a new RunsIndex lists every folder (what `python main.py runs` does)
    warm   the same RunsIndex lists again (what the window does when a run starts or ends)
    full   read_run_info with the history, for comparison (what listing cost before the index)
    table  the Runs tab fills its table with the cold list's rows (offscreen Qt, GUI thread)

Wall time and the process's CPU time are both printed: on a shared, loaded machine the wall time
includes waiting for a core; the CPU time is what the listing itself costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run_info import make_runs

from core.runs.index import RunsIndex
from core.runs.run_info import read_run_info


def best_of(passes: int, work) -> tuple[float, float, list]:
    """(best wall seconds, best CPU seconds, the last pass's result) over `passes` runs of work()."""
    walls, cpus, result = [], [], None
    for _ in range(passes):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def table_filler(root: str, infos: list):
    """A function that fills a fresh Runs tab's table with `infos` (what follows a cold list)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from gui.runs_page import RunsPage

    app = QApplication.instance() or QApplication([])

    def fill() -> None:
        page = RunsPage(lambda: root)
        page.show_runs(infos)
        app.processEvents()
        page.deleteLater()

    return fill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="fitstudio-runs-index-")
    try:
        folders = make_runs(root, args.runs, args.epochs)
        cold = best_of(3, lambda: RunsIndex().list([root]))
        index = RunsIndex()
        index.list([root])
        warm = best_of(3, lambda: index.list([root]))
        full = best_of(3, lambda: [read_run_info(folder) for folder in folders])
        table = best_of(3, table_filler(root, cold[2]))
        assert len(cold[2]) == args.runs and all(info.status == "completed" for info in cold[2])
        assert all(info.best["val_accuracy"] == 0.9 and info.can_resume for info in cold[2])
        print(f"{args.runs} runs of {args.epochs} epochs (wall / CPU seconds, best of 3):")
        for name, (wall, cpu, _) in (("cold list", cold), ("warm list", warm), ("full read_run_info", full),
                                     ("Runs tab table", table)):
            print(f"  {name:<20} {wall:6.3f} s / {cpu:6.3f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
