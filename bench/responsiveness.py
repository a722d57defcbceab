"""Does the window stay responsive while it trains, and does it train as fast as the CLI?

    python bench/responsiveness.py                      # demo, then 40,000 images at 32 px
    python bench/responsiveness.py --images 4000        # a quicker many-small-images run
    python bench/responsiveness.py --code /tmp/old --code .   # two checkouts, side by side

For each dataset (the bundled demo, and --images generated PNGs of --size px under bench/data/):
  - the window (offscreen Qt, 1400x900) trains it with Train, as a person would, while a 20 ms
    heartbeat QTimer runs on the GUI thread; the longest gap between two heartbeats over the whole
    run (Train pressed to the training thread stopped) is the longest stall of the event loop,
    also shown from the moment training began (RunStarted: TensorFlow loaded, data read); the CPU
    time the GUI thread used over the run is shown too, as it does not depend on what else runs;
  - `python main.py train` trains the same data with the same settings.
Both report images/s from the run folder's report.json: the mean of epochs 2+ (epoch 1 also
decodes, later epochs read the decoded-image cache), or of epoch 1 in a one-epoch run.
Each side runs in a fresh process, --repeats times; the table shows the best of them (lowest
stall, highest images/s), because the machine is shared and swings between fast and slow phases.
With several --code checkouts (an old one, e.g. `git archive main | tar -x -C /tmp/old`, and this
one) the window runs alternate between them, so a slow phase hits each alike; the CLI runs once per
attempt, with the last checkout (the engine, which the windows share, is the same code).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "bench", "data")
HEARTBEAT_MS = 20
STALL_TARGET_MS = 100
SPEED_TARGET = 0.95  # the window trains at 95% or more of the CLI's images/s
SMALL_CLASSES = 10


def main() -> int:
    args = parse_args()
    if args.window_child:
        return window_child(json.loads(args.window_child))
    codes = [os.path.abspath(code) for code in args.code or [ROOT]]
    print(f"code: {', '.join(codes)}; {os.cpu_count()} CPU cores; best of {args.repeats} per figure\n")
    cases = []
    if not args.skip_demo:
        cases.append(("demo (300 images, 128 px)", {"epochs": args.demo_epochs, "image_size": 128}))
    if args.images:
        folder = make_small_images(args.images, args.size)
        cases.append((f"{args.images:,} images, {args.size} px", {
            "train_dir": folder, "val_dir": None, "val_split": 0.1, "epochs": args.epochs,
            "image_size": args.size,
        }))
    rows = []
    for label, settings in cases:
        print(label, flush=True)
        results = measure(codes, settings, args.repeats)
        rows += [(label if len(codes) == 1 else f"{label} [{os.path.basename(code)}]", results[code])
                 for code in codes]
    print_table(rows)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40_000, help="generated images (0: demo only)")
    parser.add_argument("--size", type=int, default=32, help="side of the generated images and model input")
    parser.add_argument("--epochs", type=int, default=3, help="epochs on the generated images")
    parser.add_argument("--demo-epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="fresh runs per side and dataset")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--code", action="append", help="a FitStudio checkout to measure (repeatable; "
                        "default: this one)")
    parser.add_argument("--window-child", help=argparse.SUPPRESS)  # internal: one run in the window
    return parser.parse_args()


# --- the generated dataset -----------------------------------------------------------------------


def make_small_images(count: int, size: int) -> str:
    """bench/data/small-<count>-<size>px/<class>/*.png, made once: noisy flat colours, 10 classes."""
    import numpy as np
    from PIL import Image

    root = os.path.join(DATA, f"small-{count}-{size}px")
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return root
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    colours = rng.integers(30, 226, (SMALL_CLASSES, 3))
    for index in range(count):
        label = index % SMALL_CLASSES
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        pixels = np.clip(colours[label] + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"img_{index:05d}.png"))
    with open(marker, "w"):
        pass
    print(f"made {count:,} images of {size} px in {root} ({time.perf_counter() - started:.0f} s)")
    return root


# --- measuring ----------------------------------------------------------------------------------


def measure(codes: list[str], settings: dict, repeats: int) -> dict[str, dict]:
    """{code: best figures}; each attempt runs the window of every checkout, then the CLI once."""
    windows: dict[str, list[dict]] = {code: [] for code in codes}
    cli_runs = []
    for attempt in range(repeats):
        for code in codes:
            window = run_window(code, settings)
            windows[code].append(window)
            print(f"  attempt {attempt + 1} [{os.path.basename(code)}]: window stall "
                  f"{window['max_gap_ms']:.0f} ms ({window['training_gap_ms']:.0f} ms in training), "
                  f"GUI CPU {window['gui_cpu_seconds']:.1f} s, {window['images_per_second']:,.0f} img/s "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        cli_runs.append(run_cli(codes[-1], settings))
        print(f"  attempt {attempt + 1}: CLI {cli_runs[-1]:,.0f} img/s "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    return {code: best_of(windows[code], max(cli_runs)) for code in codes}


def best_of(window_runs: list[dict], cli_ips: float) -> dict:
    calmest = min(window_runs, key=lambda run: run["training_gap_ms"])
    return {
        "stalls": calmest["stalls"],
        "startup_stalls": calmest.get("startup_stalls", []),
        "startup_gap_ms": min(run.get("startup_gap_ms", float("nan")) for run in window_runs),
        "max_gap_ms": min(run["max_gap_ms"] for run in window_runs),
        "gaps_ms": [run["max_gap_ms"] for run in window_runs],
        "training_gap_ms": min(run["training_gap_ms"] for run in window_runs),
        "gui_cpu_seconds": min(run["gui_cpu_seconds"] for run in window_runs),
        "window_ips": max(run["images_per_second"] for run in window_runs),
        "cli_ips": cli_ips,
    }


def run_window(code: str, settings: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="fitstudio-bench-") as scratch:
        job = {"code": code, "scratch": scratch, "settings": settings}
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TF_CPP_MIN_LOG_LEVEL": "3"}
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--window-child", json.dumps(job)],
            cwd=code, env=env, capture_output=True, text=True, check=False,
        )
        lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
        if child.returncode or not lines:
            raise RuntimeError(f"the window run failed ({child.returncode}):\n{child.stderr[-3000:]}")
        return json.loads(lines[-1])


def run_cli(code: str, settings: dict) -> float:
    with tempfile.TemporaryDirectory(prefix="fitstudio-bench-") as scratch:
        command = [sys.executable, "main.py", "train", "--epochs", str(settings["epochs"]),
                   "--image-size", str(settings["image_size"]), "--out", scratch]
        if settings.get("train_dir"):
            command += ["--train", settings["train_dir"], "--val-split", str(settings["val_split"])]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        child = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, check=False)
        if child.returncode:
            raise RuntimeError(f"the CLI run failed ({child.returncode}):\n{child.stderr[-3000:]}")
        return report_speed(scratch)


def report_speed(out_dir: str) -> float:
    """Images/s of the one run folder under `out_dir`: the mean of epochs 2+, or epoch 1 alone."""
    (report,) = glob.glob(os.path.join(out_dir, "*", "report.json"))
    with open(report, encoding="utf-8") as handle:
        epochs = json.load(handle)["epochs"]
    speeds = [epoch["images_per_second"] for epoch in epochs[1:] or epochs]
    return sum(speeds) / len(speeds)


# --- inside the child process: one run through the window ------------------------------------------


def window_child(job: dict) -> int:
    sys.path.insert(0, job["code"])
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer

    from core.config import TrainingConfig
    from gui.app import create_application
    from gui.main_window import MainWindow
    from gui.settings_store import SettingsStore
    from gui.worker import wait_for_threads

    create_application([sys.argv[0]])
    store = SettingsStore(QSettings(os.path.join(job["scratch"], "settings.ini"), QSettings.Format.IniFormat))
    runs = os.path.join(job["scratch"], "runs")
    store.save_config(TrainingConfig(out_dir=runs).replace(**job["settings"]))
    heartbeat = Heartbeat()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(HEARTBEAT_MS)
    timer.timeout.connect(heartbeat.beat)
    timer.start()
    sampler = StallSampler(heartbeat)
    # As the app starts: the window loads TensorFlow in the background (the device probe) once it
    # shows; Train is pressed when the dataset is scanned and the device is known.
    window = MainWindow(store=store)
    window.resize(1400, 900)
    window.show()
    page = window.training
    heartbeat.beat()
    shown = heartbeat.last
    wait_until(lambda: page.train_button.isEnabled() and "detecting" not in window.device_label.text(), 300)
    startup_gap = heartbeat.max_gap
    heartbeat.max_gap = 0.0
    loop = QEventLoop()
    page.idle.connect(loop.quit)
    heartbeat.beat()
    started = heartbeat.last
    cpu_started = time.thread_time()
    if not page.start_training():
        raise RuntimeError(f"Train did not start: {page.train_hint.text()}")
    page.worker.run_started.connect(heartbeat.mark_training)
    loop.exec()
    gui_cpu_seconds = time.thread_time() - cpu_started
    heartbeat.beat()
    timer.stop()
    sampler.stop()
    window.close()
    wait_for_threads()
    result = page.last_result
    if result is None or result.status != "completed":
        raise RuntimeError(f"the run did not complete: {result}")
    print(json.dumps({
        "max_gap_ms": heartbeat.max_gap * 1000,
        "training_gap_ms": heartbeat.max_training_gap * 1000,
        "gui_cpu_seconds": gui_cpu_seconds,
        "images_per_second": report_speed(runs),
        "startup_gap_ms": startup_gap * 1000,
        "stalls": sampler.explain([gap for gap in heartbeat.long_gaps if gap[0] >= started], started),
        "startup_stalls": sampler.explain([gap for gap in heartbeat.long_gaps if gap[0] < started], shown, 3),
    }), flush=True)
    return 0


class Heartbeat:
    """The longest interval between beats, overall and since training (RunStarted) began, and every
    gap long enough to explain (begin, end, during training)."""

    def __init__(self):
        self.last = None
        self.max_gap = 0.0
        self.max_training_gap = 0.0
        self.training = False
        self.long_gaps: list[tuple[float, float, bool]] = []

    def beat(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            gap = now - self.last
            self.max_gap = max(self.max_gap, gap)
            if self.training:
                self.max_training_gap = max(self.max_training_gap, gap)
            if gap > (HEARTBEAT_MS + STALL_REPORT_MS) / 1000:
                self.long_gaps.append((self.last, now, self.training))
        self.last = now

    def mark_training(self, *_args) -> None:
        self.training = True


def wait_until(condition, seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + seconds
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(lambda: loop.quit() if condition() or time.monotonic() > deadline else None)
    poll.start()
    loop.exec()  # the event loop runs (and the heartbeat with it) until the condition holds
    poll.stop()
    if not condition():
        raise RuntimeError("the dataset was not accepted, or the device not found, in time")


# --- what each stall was: a watchdog thread and the garbage collector's own timings -----------------


STALL_REPORT_MS = 50  # a heartbeat this late (beyond its interval) is sampled and explained
IDLE_FUNCTIONS = {"wait", "_wait_for_tstate_lock", "get", "select", "poll", "_worker", "sleep", "join",
                  "_deliver_when_due", "acquire"}


class StallSampler:
    """Explains the event loop's stalls without needing the GIL at the moment they happen.

    - A watchdog thread checks the GUI thread's heartbeat every 5 ms; once it is STALL_REPORT_MS late,
      it takes `sys._current_frames()` of every thread: where each thread's Python stood when the
      watchdog got the GIL back. The thread that is not parked in a wait is the one that was working.
      The watchdog's own lateness says whether the GIL was free meanwhile (a late watchdog means some
      thread held the GIL: in C, as in a garbage collection or an op that does not release it).
    - `gc.callbacks` times every collection on every thread: a gen-2 collection stops all threads.
    Each gap of the heartbeat over STALL_REPORT_MS is then matched with what overlapped it.
    """

    def __init__(self, heartbeat: Heartbeat):
        import gc
        import threading

        self.heartbeat = heartbeat
        self.samples: list[dict] = []  # {at, watchdog_late_ms, frames: {thread: "where"}}
        self.collections: list[tuple[float, float, int, str]] = []  # start, end, generation, thread
        self._gc_started: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench stall watchdog", daemon=True)
        gc.callbacks.append(self._on_gc)
        self._thread.start()

    def stop(self) -> None:
        import gc

        self._stop.set()
        self._thread.join()
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        import threading

        ident = threading.get_ident()
        if phase == "start":
            self._gc_started[ident] = time.perf_counter()
        elif ident in self._gc_started:
            start = self._gc_started.pop(ident)
            self.collections.append((start, time.perf_counter(), info["generation"],
                                     threading.current_thread().name))

    def _watch(self) -> None:
        sampled_beat = None
        expected = time.perf_counter()
        while not self._stop.wait(0.005):
            now = time.perf_counter()
            watchdog_late = now - expected - 0.005
            expected = now
            last = self.heartbeat.last
            if last is None or last == sampled_beat:
                continue
            if now - last > (HEARTBEAT_MS + STALL_REPORT_MS) / 1000:
                sampled_beat = last
                self.samples.append({"at": now, "beat": last, "watchdog_late_ms": watchdog_late * 1000,
                                     "frames": _busy_frames()})

    def explain(self, gaps: list[tuple[float, float, bool]], started: float, limit: int = 8) -> list[dict]:
        """The longest `limit` gaps, each with the collections and samples that fell inside it."""
        stalls = []
        for begin, end, in_training in sorted(gaps, key=lambda gap: gap[0] - gap[1])[:limit]:
            overlap = [(min(e, end) - max(s, begin), gen, name) for s, e, gen, name in self.collections
                       if s < end and e > begin]
            gc_ms = sum(seconds for seconds, _, _ in overlap) * 1000
            sample = next((s for s in self.samples if s["beat"] == begin), None)
            stalls.append({
                "ms": (end - begin) * 1000, "at_s": begin - started, "in_training": in_training,
                "gc_ms": gc_ms,
                "gc": sorted({f"gen{gen} on {name}" for _, gen, name in overlap}),
                "watchdog_late_ms": sample["watchdog_late_ms"] if sample else None,
                "frames": sample["frames"] if sample else {},
            })
        return stalls


def _busy_frames() -> dict[str, str]:
    """Thread name -> its innermost Python frames, for threads not parked in a wait."""
    import sys
    import threading
    import traceback

    names = {thread.ident: thread.name for thread in threading.enumerate()}
    busy = {}
    for ident, frame in sys._current_frames().items():
        name = names.get(ident, str(ident))
        if name == "bench stall watchdog":
            continue
        stack = traceback.extract_stack(frame)
        if not stack or stack[-1].name in IDLE_FUNCTIONS:
            continue
        busy[name] = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in stack[:-5:-1])
    return busy


# --- the table -------------------------------------------------------------------------------------


def print_table(rows: list[tuple[str, dict]]) -> None:
    width = max(len(label) for label, _ in rows)
    print(f"\nheartbeat {HEARTBEAT_MS} ms; start-up = longest gap from the window shown to Train; "
          "longest gap = longest stall of the GUI event loop from Train on "
          f"(target <= {STALL_TARGET_MS} ms); window speed target >= {SPEED_TARGET:.0%} of the CLI")
    header = (f"{'dataset':<{width}} {'start-up':>9} {'longest gap':>12} {'(runs)':>16} {'in training':>12} "
              f"{'GUI CPU':>8} {'window img/s':>13} {'CLI img/s':>10} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for label, row in rows:
        runs = "/".join(f"{gap:.0f}" for gap in row["gaps_ms"])
        ratio = row["window_ips"] / row["cli_ips"] if row["cli_ips"] else float("nan")
        print(f"{label:<{width}} {row['startup_gap_ms']:>6.0f} ms"
              f" {row['max_gap_ms']:>9.0f} ms {runs:>16} {row['training_gap_ms']:>9.0f} ms "
              f"{row['gui_cpu_seconds']:>6.1f} s {row['window_ips']:>13,.0f} {row['cli_ips']:>10,.0f} "
              f"{ratio:>6.2f}")
    for label, row in rows:
        print_stalls(f"{label}, from Train", row["stalls"])
        print_stalls(f"{label}, from the window shown to Train (TensorFlow loads)", row["startup_stalls"])


def print_stalls(label: str, stalls: list[dict]) -> None:
    """What the longest stalls of the calmest run were: collections that overlapped them, whether the
    watchdog thread got the GIL late (someone held it), and the threads that were not waiting."""
    print(f"\nlongest stalls of the calmest window run, {label} (t: seconds after Train)")
    if not stalls:
        print(f"  none over {HEARTBEAT_MS + STALL_REPORT_MS} ms")
    for stall in stalls:
        phase = "training" if stall["in_training"] else "starting"
        late = stall["watchdog_late_ms"]
        gil = "n/a" if late is None else f"{late:.0f} ms"
        collections = ", ".join(stall["gc"]) or "none"
        print(f"  {stall['ms']:5.0f} ms at t={stall['at_s']:6.1f} s ({phase}): garbage collection "
              f"{stall['gc_ms']:.0f} ms ({collections}); watchdog late {gil}")
        for thread, where in sorted(stall["frames"].items()):
            print(f"      {thread}: {where}")


if __name__ == "__main__":
    sys.exit(main())
