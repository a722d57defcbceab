"""Drives the real application (gui.app.run_app: real device probe, real engine, real exit path) in a
fresh process, as a user would, and writes what happened to a JSON file for tests/gui/test_app_process.py.

    python tests/gui/app_driver.py PLAN.json

The plan names a scenario and its inputs; settings go to $XDG_CONFIG_HOME (the test points it at a
temporary folder). The result JSON is written before the window closes, as the exit path may end the
process at once.
"""

from __future__ import annotations

import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.config import TrainingConfig  # noqa: E402
from gui.app import create_application, run_app  # noqa: E402
from gui.settings_store import SettingsStore  # noqa: E402

POLL_MS = 5


class Driver:
    def __init__(self, plan: dict):
        self.plan = plan
        self.result: dict = {"statuses": [], "events": []}
        self.window = None
        self.shown_at = 0.0
        self.deadline = time.monotonic() + plan.get("timeout_s", 120)

    # --- helpers --------------------------------------------------------------------------------

    def note(self, event: str) -> None:
        self.result["events"].append([round(time.monotonic() - self.shown_at, 3), event])

    def when(self, condition, then) -> None:
        """Calls then() once condition() holds, polling on the event loop; gives up at the deadline."""
        def poll() -> None:
            if condition():
                then()
            elif time.monotonic() > self.deadline:
                self.finish(f"timed out waiting ({self.result['events'][-1:]})")
            else:
                QTimer.singleShot(POLL_MS, poll)

        QTimer.singleShot(0, poll)

    def finish(self, error: str = "") -> None:
        self.result["error"] = error
        self.result["device"] = self.window.device_label.text()
        with open(self.plan["result"], "w", encoding="utf-8") as f:
            json.dump(self.result, f)
        self.window.confirm_close_during_training = lambda: True  # the user answers "Yes, stop"
        self.note("close")
        self.window.close()

    # --- start ----------------------------------------------------------------------------------

    def start(self) -> None:
        windows = [w for w in QApplication.topLevelWidgets() if type(w).__name__ == "MainWindow"]
        if not windows or not windows[0].isVisible():
            QTimer.singleShot(POLL_MS, self.start)
            return
        self.window, self.shown_at = windows[0], time.monotonic()
        self.window.statusBar().messageChanged.connect(self.result["statuses"].append)
        getattr(self, self.plan["scenario"].replace("-", "_"))()

    def train_button_ready(self) -> bool:
        return self.window.training.train_button.isEnabled()

    def press_train(self) -> None:
        self.note("train")
        self.result["train_pressed_after_s"] = round(time.monotonic() - self.shown_at, 3)
        self.window.training.train_button.click()

    # --- scenarios ------------------------------------------------------------------------------

    def train_at_once(self) -> None:
        """Train as soon as the button is enabled and, with `model`, open that model on the Evaluate
        tab and evaluate it at the same time; then wait for both. With `export_to`, then export the
        model in every format and close the window as the export begins its second format."""
        page = self.window.training
        done = {"train": False, "evaluate": "model" not in self.plan}
        page.idle.connect(lambda: (done.__setitem__("train", True), self.note("trained")))
        self.window.evaluation.job_done.connect(
            lambda ok: (done.__setitem__("evaluate", True), self.result.__setitem__("evaluated", ok),
                        self.note("evaluated"))
        )
        self.window.models.load_failed.connect(
            lambda _source, message: (done.__setitem__("evaluate", True),
                                      self.result.update(evaluated=False, model_error=message))
        )
        self.when(self.train_button_ready, self.press_train)
        if "model" in self.plan:
            self.window.tabs.setCurrentWidget(self.window.evaluation)
            self.window.evaluation.evaluate_run(self.plan["model"])
        self.when(lambda: all(done.values()), self.after_training)

    def after_training(self) -> None:
        page = self.window.training
        page.plots.redraw()
        result = page.last_result
        self.result.update(
            status=result.status if result else None,
            run_dir=result.run_dir if result else None,
            points=page.plots.point_counts(),
            log=page.log.text(),
        )
        if "export_to" in self.plan:
            self.export_then_close()
        else:
            self.finish()

    def export_then_close(self) -> None:
        page = self.window.export
        self.window.tabs.setCurrentWidget(page)
        page.folder.set_path(self.plan["export_to"])
        self.result["export_started"] = page.export()
        if self.result["export_started"]:
            self.when(lambda: "savedmodel" in page.activity.text(), self.finish)
        else:
            self.finish("the export did not start")

    def close_during_training(self) -> None:
        """Train at once, close the window `close_after_s` seconds after pressing Train."""
        def press_and_schedule_close() -> None:
            self.press_train()
            QTimer.singleShot(int(self.plan["close_after_s"] * 1000), self.finish)

        self.when(self.train_button_ready, press_and_schedule_close)

    def close_during_scan(self) -> None:
        """Choose a training folder (and `val_folder`), close while they are still scanned."""
        data = self.window.training.data

        def choose() -> None:
            if "val_folder" in self.plan:
                data.val_field.set_path(self.plan["val_folder"])
            data.train_field.set_path(self.plan["folder"])
            QTimer.singleShot(300, self.finish)

        self.when(lambda: not data.is_scanning(), choose)


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        plan = json.load(f)
    create_application([sys.argv[0]])
    if "config" in plan:
        SettingsStore().save_config(TrainingConfig.from_dict(plan["config"]))
    driver = Driver(plan)
    QTimer.singleShot(0, driver.start)
    return run_app()


if __name__ == "__main__":
    sys.exit(main())
