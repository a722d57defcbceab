"""The Label tab: the model asks about the unlabeled images it is least sure of, a person answers
with one key, and the model retrains in the background every K labels.

Keys (on the gallery or anywhere on the page but a text field): 1-9 put the current image in that
class, Enter accepts the suggested class, Backspace undoes the last label, S skips. The buttons do
the same. Each label is a logged, undoable move into the training folder's class folder
(core.data.labeling). The lifecycle (queue, moves, rounds on a worker thread) is gui.label_session's;
this page only shows it. The gallery shows one batch at a time, so 10,000 unlabeled images cost the
GUI thread no more than 24.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.modeling.label_ranking import DEFAULT_STRATEGY, STRATEGIES, Suggestion
from gui.folder_field import FolderField
from gui.gallery import BLUE, GREY, Bar, Gallery, GalleryItem
from gui.label_session import DEFAULT_RETRAIN_EVERY, LabelSession

BATCH_SIZE = 24
PLACEHOLDER = ("Choose a model, a folder of unlabeled images and the training folder, then rank: the "
               "images the model is least sure of come first.")
CLASS_KEYS = {getattr(Qt.Key, f"Key_{n}"): n - 1 for n in range(1, 10)}


class LabelPage(QWidget):
    status_message = Signal(str)

    def __init__(
        self,
        default_train_dir: Callable[[], str] = lambda: "",
        round_fn: Callable | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.default_train_dir = default_train_dir
        self.session = LabelSession(round_fn, self)
        self._build()
        self.session.queue_changed.connect(self._show_batch)
        self.session.status_changed.connect(self.status.setText)
        self.session.progress.connect(self._progress)
        self.session.failed.connect(self._failed)
        self.session.busy_changed.connect(self._busy)
        self.session.round_finished.connect(self._round_finished)

    # --- building -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_field = FolderField("Model: a run folder")
        self.model_field.combo.lineEdit().setPlaceholderText("A run folder (its settings retrain the model)")
        self.unlabeled_field = FolderField("Unlabeled images")
        self.unlabeled_field.combo.lineEdit().setPlaceholderText("A folder of images without labels")
        self.train_field = FolderField("Training folder")
        self.strategy = QComboBox()
        self.strategy.addItems(STRATEGIES)
        self.strategy.setCurrentText(DEFAULT_STRATEGY)
        self.strategy.setToolTip("margin: top-1 minus top-2 smallest first; entropy: flattest first; "
                                 "least-confidence: lowest top probability first; random: the baseline")
        self.retrain_every = QSpinBox()
        self.retrain_every.setRange(1, 1000)
        self.retrain_every.setValue(DEFAULT_RETRAIN_EVERY)
        self.retrain_every.setSuffix(" labels")
        self.retrain_every.setToolTip("Retrain the model in the background after this many labels")
        self.retrain_every.valueChanged.connect(lambda value: setattr(self.session, "retrain_every", value))
        self.start_button = QPushButton("Rank the unlabeled images")
        self.start_button.setObjectName("primaryButton")
        self.start_button.clicked.connect(self.start)
        self.retrain_button = QPushButton("Retrain now")
        self.retrain_button.clicked.connect(self.session.retrain_now)
        form = QFormLayout()
        form.addRow("Model", self.model_field)
        form.addRow("Unlabeled", self.unlabeled_field)
        form.addRow("Training folder", self.train_field)
        options = QHBoxLayout()
        options.addWidget(QLabel("Ask first"))
        options.addWidget(self.strategy)
        options.addWidget(QLabel("Retrain every"))
        options.addWidget(self.retrain_every)
        options.addStretch(1)
        options.addWidget(self.retrain_button)
        options.addWidget(self.start_button)
        self.gallery = Gallery(bars=2, placeholder=PLACEHOLDER)
        self.gallery.installEventFilter(self)
        self.class_row = QHBoxLayout()
        self.accept_button = QPushButton("Accept suggestion (Enter)")
        self.accept_button.clicked.connect(self.accept_current)
        self.skip_button = QPushButton("Skip (S)")
        self.skip_button.clicked.connect(self.skip_current)
        self.undo_button = QPushButton("Undo (Backspace)")
        self.undo_button.clicked.connect(self.undo_last)
        actions = QHBoxLayout()
        actions.addLayout(self.class_row)
        actions.addStretch(1)
        for button in (self.accept_button, self.skip_button, self.undo_button):
            actions.addWidget(button)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("Nothing ranked yet.")
        self.status.setObjectName("labelStatus")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(options)
        layout.addWidget(self.gallery, 1)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.class_buttons: list[QPushButton] = []
        self._button_classes: list[str] = []
        self._update_enabled()

    def _build_class_buttons(self) -> None:
        for button in self.class_buttons:
            self.class_row.removeWidget(button)
            button.deleteLater()
        self.class_buttons = []
        self._button_classes = list(self.session.class_names)
        for index, name in enumerate(self.session.class_names):
            button = QPushButton(f"{index + 1} {name}" if index < 9 else name)
            button.clicked.connect(lambda _checked=False, i=index: self.label_current(i))
            self.class_row.addWidget(button)
            self.class_buttons.append(button)

    # --- actions --------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.train_field.path():
            self.train_field.set_path(self.default_train_dir(), emit=False)
        model, unlabeled = self.model_field.path(), self.unlabeled_field.path()
        train = self.train_field.path()
        missing = [name for name, value in (("a model", model), ("an unlabeled folder", unlabeled),
                                            ("a training folder", train)) if not value]
        if missing:
            self._failed(f"Choose {', '.join(missing)} first.")
            return
        self.session.retrain_every = self.retrain_every.value()
        self.session.start(model, train, unlabeled, self.strategy.currentText())

    def current(self) -> Suggestion | None:
        index = self.gallery.currentIndex()
        items = self.gallery.items()
        if not items:
            return None
        row = index.row() if index.isValid() else 0
        return items[row].data

    def label_current(self, class_index: int) -> None:
        suggestion = self.current()
        if suggestion is not None and 0 <= class_index < len(self.session.class_names):
            self.session.label(suggestion, self.session.class_names[class_index])

    def accept_current(self) -> None:
        suggestion = self.current()
        if suggestion is not None:
            self.session.accept(suggestion)

    def skip_current(self) -> None:
        suggestion = self.current()
        if suggestion is not None:
            self.session.skip(suggestion)

    def undo_last(self) -> None:
        self.session.undo_last()

    def handle_key(self, key: int) -> bool:
        """The page's keys; True when the key was one of them."""
        if key in CLASS_KEYS:
            self.label_current(CLASS_KEYS[key])
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept_current()
        elif key == Qt.Key.Key_Backspace:
            self.undo_last()
        elif key == Qt.Key.Key_S:
            self.skip_current()
        else:
            return False
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The gallery would take Enter to open the image and letters to search: here they label.
        if event.type() == QEvent.Type.KeyPress and _plain(event):
            return self.handle_key(event.key())
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event) -> None:
        typing = isinstance(self.focusWidget(), QLineEdit | QComboBox | QSpinBox)
        if typing or not _plain(event) or not self.handle_key(event.key()):
            super().keyPressEvent(event)

    def shutdown(self) -> None:
        self.session.stop()
        self.gallery.shutdown()

    @property
    def busy(self) -> bool:
        return self.session.busy

    # --- showing --------------------------------------------------------------------------------

    def _show_batch(self) -> None:
        row = max(0, self.gallery.currentIndex().row())
        self.gallery.set_items([self._item(s) for s in self.session.queue[:BATCH_SIZE]])
        if self.gallery.count():
            self.gallery.setCurrentIndex(self.gallery.model().index(min(row, self.gallery.count() - 1), 0))
        self.status.setText(self.session.status_text())
        self._update_enabled()

    def _item(self, suggestion: Suggestion) -> GalleryItem:
        names = self.session.class_names
        order = sorted(range(len(suggestion.probabilities)), key=lambda i: -suggestion.probabilities[i])[:2]
        bars = tuple(Bar(names[i], suggestion.probabilities[i], BLUE if rank == 0 else GREY)
                     for rank, i in enumerate(order))
        return GalleryItem(
            suggestion.path, f"#{suggestion.rank} {suggestion.suggested} {suggestion.probability:.0%}", bars,
            tooltip=f"{suggestion.path}\nmargin {suggestion.margin:.3f}, entropy {suggestion.entropy:.3f}",
            data=suggestion,
        )

    def _round_finished(self, result) -> None:
        if self._button_classes != self.session.class_names:
            self._build_class_buttons()
        skipped = len(result.ranking.skipped)
        if skipped:
            self.status_message.emit(f"{skipped} unlabeled files could not be read and are left alone.")

    def _progress(self, done: int, total: int) -> None:
        self.progress.setVisible(done < total)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _busy(self, busy: bool) -> None:
        if not busy:
            self.progress.setVisible(False)
        self._update_enabled()

    def _failed(self, message: str) -> None:
        self.status_message.emit(message)
        self.status.setText(f"{message}\n{self.session.status_text()}")

    def _update_enabled(self) -> None:
        has_items = self.gallery.count() > 0
        for button in (self.accept_button, self.skip_button, *self.class_buttons):
            button.setEnabled(has_items)
        self.undo_button.setEnabled(bool(self.session.labels))
        self.start_button.setEnabled(not self.session.busy)
        self.retrain_button.setEnabled(not self.session.busy and bool(self.session.run_dir))


def _plain(event) -> bool:
    """A key pressed without Ctrl, Alt, Shift or Meta (Ctrl+S and the menus' keys stay theirs)."""
    return not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
