"""The Label tab's lifecycle without widgets: the queue of images to ask about, labels as logged moves,
undo, and the rounds (retrain, then rank again) on a worker thread.

A round is core.training.label_rounds.label_round (or a stand-in given by a test) run through
gui.worker.run_in_thread: the GUI thread only moves files (one rename and one small log write per
label) and filters lists; scoring, hashing and training never run on it. Labels go on while a round
runs; the new ranking then replaces the queue, less the images labeled meanwhile.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from core.data import fixes
from core.data.fixes import Move, MoveError
from core.data.labeling import label_image
from core.formatting import format_duration
from core.modeling.label_ranking import DEFAULT_STRATEGY, Suggestion
from gui.worker import run_in_thread

DEFAULT_RETRAIN_EVERY = 20


class RealRounds:
    """The real round, called on the worker thread (TensorFlow is imported there, never on the GUI
    thread). It remembers the images' perceptual hashes, so a later round hashes only new images;
    only the round's thread touches that memory, and one round runs at a time."""

    def __init__(self):
        self.known_prints: dict = {}

    def __call__(self, run_dir, train_dir, unlabeled_dir, strategy, retrain, cancel, progress):
        from core.training.label_rounds import label_round

        return label_round(run_dir, train_dir, unlabeled_dir, strategy, retrain=retrain, cancel=cancel,
                           on_progress=progress, known_prints=self.known_prints)


@dataclass(frozen=True)
class Label:
    move: Move
    suggestion: Suggestion
    class_name: str


class LabelSession(QObject):
    """Signals carry plain data; every slot runs on the GUI thread."""

    queue_changed = Signal()  # the images to ask about changed (a label, a skip, a new ranking)
    status_changed = Signal(str)  # the line: labeled / remaining / validation accuracy / retraining
    progress = Signal(int, int)  # scoring: done, total
    failed = Signal(str)  # a move, an undo or a round that could not be done, said for the user
    busy_changed = Signal(bool)  # a round is running
    round_finished = Signal(object)  # the RoundResult

    def __init__(self, round_fn: Callable | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.round_fn = round_fn or RealRounds()
        self.run_dir = self.train_dir = self.unlabeled_dir = ""
        self.strategy = DEFAULT_STRATEGY
        self.retrain_every = DEFAULT_RETRAIN_EVERY
        self.class_names: list[str] = []
        self.queue: list[Suggestion] = []
        self.labels: list[Label] = []  # this session's labels not undone, oldest first
        self.since_retrain = 0
        self.validation_accuracy: float | None = None
        self.rounds = 0
        self.last_retrain_seconds = 0.0
        self.busy = False
        self._cancel = threading.Event()
        self._note = ""

    # --- rounds -------------------------------------------------------------------------------

    def start(self, run_dir: str, train_dir: str, unlabeled_dir: str, strategy: str = DEFAULT_STRATEGY):
        """Ranks `unlabeled_dir` with the model of `run_dir` (no retraining yet)."""
        if self.busy:  # the Rank button is disabled meanwhile; a round's result must not mix sessions
            return
        self.run_dir, self.train_dir, self.unlabeled_dir = run_dir, train_dir, unlabeled_dir
        self.strategy = strategy
        self.queue, self.labels, self.since_retrain, self.validation_accuracy = [], [], 0, None
        self._start_round(retrain=False)

    def _start_round(self, retrain: bool) -> None:
        if self.busy:
            return
        self.busy = True
        self._cancel = threading.Event()
        self._note = self._retraining_note() if retrain else "Scoring the unlabeled images…"
        if retrain:
            self.since_retrain = 0
        self.busy_changed.emit(True)
        self._emit_status()
        run_in_thread(
            self.round_fn, self.run_dir, self.train_dir, self.unlabeled_dir, self.strategy, retrain,
            self._cancel, on_result=self._round_done, on_error=self._round_failed,
            on_progress=self.progress.emit, on_done=self._round_ended, name="FitStudio label round",
        )

    def _round_done(self, result) -> None:
        self.rounds += 1
        retrained = result.retrained
        if retrained is not None:
            self.last_retrain_seconds = result.seconds
            if retrained.status == "completed":
                self.run_dir = result.run_dir
                self.validation_accuracy = retrained.best_val_accuracy
            self._note = self._retrained_note(result)
        else:
            self._note = ""
        self.class_names = list(result.ranking.class_names)
        # The same folder string found both paths: plain strings compare (no disk access per image).
        moved = {label.suggestion.path for label in self.labels}
        self.queue = [s for s in result.ranking.suggestions if s.path not in moved]
        self.round_finished.emit(result)
        self.queue_changed.emit()

    def _round_failed(self, message: str, _details: str) -> None:
        self._note = ""
        self.failed.emit(message)

    def _round_ended(self) -> None:
        self.busy = False
        self.busy_changed.emit(False)
        self._emit_status()
        if self.since_retrain >= self.retrain_every and not self._cancel.is_set():
            self._start_round(retrain=True)

    def retrain_now(self) -> None:
        if self.run_dir and not self.busy:
            self._start_round(retrain=True)

    def stop(self) -> None:
        """Asks a running round to stop (within a batch); the thread ends soon after."""
        self._cancel.set()

    # --- labels -------------------------------------------------------------------------------

    def label(self, suggestion: Suggestion, class_name: str) -> Move | None:
        """Moves the image into the training folder's `class_name` folder; None (and `failed`) when
        it cannot."""
        try:
            move = label_image(self.train_dir, self.unlabeled_dir, suggestion.path, class_name)
        except MoveError as exc:
            if not os.path.exists(suggestion.path):  # gone: there is nothing left to ask about
                self._drop(suggestion)
                self.queue_changed.emit()
            self.failed.emit(str(exc))
            return None
        self.labels.append(Label(move, suggestion, class_name))
        self._drop(suggestion)
        self.since_retrain += 1
        self._emit_status()
        self.queue_changed.emit()
        if self.since_retrain >= self.retrain_every:
            self._start_round(retrain=True)
        return move

    def accept(self, suggestion: Suggestion) -> Move | None:
        return self.label(suggestion, suggestion.suggested)

    def skip(self, suggestion: Suggestion) -> None:
        """Asks about it again after all the others."""
        self._drop(suggestion)
        self.queue.append(suggestion)
        self.queue_changed.emit()

    def undo_last(self) -> Label | None:
        """Puts the last labeled image back in the unlabeled folder and first in the queue."""
        if not self.labels:
            return None
        last = self.labels[-1]
        try:
            fixes.undo(self.train_dir, last.move.id, origin=self.unlabeled_dir)
        except MoveError as exc:
            self.failed.emit(str(exc))
            return None
        self.labels.pop()
        self.since_retrain = max(0, self.since_retrain - 1)
        self.queue.insert(0, last.suggestion)
        self._emit_status()
        self.queue_changed.emit()
        return last

    def _drop(self, suggestion: Suggestion) -> None:
        self.queue = [s for s in self.queue if s.path != suggestion.path]

    # --- the status line ----------------------------------------------------------------------

    def status_text(self) -> str:
        parts = [f"Labeled {len(self.labels)}", f"{len(self.queue)} remaining"]
        if self.validation_accuracy is not None:
            parts.append(f"validation accuracy {self.validation_accuracy:.1%}")
        if not self.busy and self.run_dir:
            parts.append(f"retrains after {max(0, self.retrain_every - self.since_retrain)} more labels")
        return " · ".join(parts) + (f"  —  {self._note}" if self._note else "")

    def _emit_status(self) -> None:
        self.status_changed.emit(self.status_text())

    def _retraining_note(self) -> str:
        seconds = self.last_retrain_seconds
        last = f" (the last one took {format_duration(seconds)})" if seconds else ""
        return f"Retraining in the background with this session's {len(self.labels)} labels…{last}"

    def _retrained_note(self, result) -> str:
        run = result.retrained
        if run.status != "completed":
            return f"Retraining {run.status}: {run.message or 'the ranking uses the previous model'}"
        how = ("its head on cached backbone features" if result.cached_features
               else f"{result.model or 'the model'} in full (no pretrained backbone)")
        return f"Retrained {how} in {format_duration(result.seconds)}"
