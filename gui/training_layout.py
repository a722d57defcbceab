"""The Train tab's layout: where the page's widgets go and how they look (like a Designer form's
setupUi). The page creates the widgets and owns them; this module only styles and places them."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget


def lay_out(page) -> None:
    """Styles the page's widgets and places them: panels left, summary, plots and log right."""
    page.train_button.setObjectName("primaryButton")
    page.train_button.setMinimumHeight(36)
    page.train_button.setIconSize(QSize(16, 16))
    page.stop_button.setObjectName("stopButton")
    page.stop_button.setMinimumHeight(36)
    page.stop_button.setEnabled(False)
    page.train_hint.setObjectName("trainHint")
    page.train_hint.setWordWrap(True)
    page.resume_button.setMinimumHeight(36)
    page.resume_button.setToolTip("Continue the last run from its last finished epoch")
    page.resume_run_button.setObjectName("linkButton")
    page.resume_run_button.setCursor(Qt.CursorShape.PointingHandCursor)
    page.resume_run_button.setToolTip(
        "Continue any run folder from its last checkpoint, or train a finished run for more epochs"
    )
    page.resume_action.setToolTip(page.resume_button.toolTip())
    page.resume_run_action.setToolTip(page.resume_run_button.toolTip())
    buttons = QHBoxLayout()
    buttons.addWidget(page.train_button, 2)
    buttons.addWidget(page.resume_button, 1)
    buttons.addWidget(page.stop_button, 1)
    page.sweep_button = QPushButton("Sweep…")
    page.sweep_button.setToolTip("Search learning rate, batch size, model and augmentation in several "
                                 "trials, bad ones stopped early (the Runs tab shows them)")
    page.sweep_button.clicked.connect(page.open_sweep_dialog)
    buttons.addWidget(page.sweep_button, 1)
    page.warm_up_label.setObjectName("warmUpLabel")
    page.warm_up_label.setToolTip("Decoding the training images into the disk cache while you set up, "
                                  "so the first epoch starts fast; Train takes over from here")
    page.warm_up_label.hide()
    hint_row = QHBoxLayout()
    hint_row.addWidget(page.train_hint, 1)
    hint_row.addWidget(page.warm_up_label, 0, Qt.AlignmentFlag.AlignTop)
    hint_row.addWidget(page.resume_run_button, 0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
    panels = QWidget()
    panels.setObjectName("sidePanel")
    panels_layout = QVBoxLayout(panels)
    panels_layout.setContentsMargins(0, 0, 4, 0)
    panels_layout.addWidget(page.data)
    panels_layout.addWidget(page.settings)
    panels_layout.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidget(panels)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    # Train and Stop stay in view below the scrolling panels, whatever the window height.
    left = QWidget()
    left.setObjectName("sidePanel")
    # As wide as the panels need (the data panel's folder rows and table): never clipped on the
    # right, as the horizontal scroll bar is off.
    scrollbar = scroll.style().pixelMetric(scroll.style().PixelMetric.PM_ScrollBarExtent)
    left.setMinimumWidth(max(400, panels.minimumSizeHint().width() + scrollbar + 6))
    left_layout = QVBoxLayout(left)
    left_layout.setContentsMargins(0, 0, 0, 0)
    left_layout.addWidget(scroll, 1)
    left_layout.addLayout(buttons)
    left_layout.addLayout(hint_row)
    right_top = QWidget()
    right_layout = QVBoxLayout(right_top)
    right_layout.setContentsMargins(0, 0, 0, 0)
    right_layout.addWidget(page.summary)
    right_layout.addWidget(page.plots, 1)
    page.right_splitter = QSplitter(Qt.Orientation.Vertical)
    page.right_splitter.addWidget(right_top)
    page.right_splitter.addWidget(page.log)
    page.right_splitter.setStretchFactor(0, 4)
    page.right_splitter.setStretchFactor(1, 1)
    page.splitter = QSplitter(Qt.Orientation.Horizontal)
    page.splitter.addWidget(left)
    page.splitter.addWidget(page.right_splitter)
    page.splitter.setStretchFactor(0, 0)
    page.splitter.setStretchFactor(1, 1)
    page.splitter.setSizes([left.minimumWidth(), 1360 - left.minimumWidth()])
    page.right_splitter.setSizes([560, 160])
    layout = QHBoxLayout(page)
    layout.setContentsMargins(6, 6, 6, 6)
    layout.addWidget(page.splitter)
    _attach_to_run_widgets(page)


def _attach_to_run_widgets(page) -> None:
    """The summary banner offers Resume, and the status strip shows the data-wait and workers meters.

    Both widgets belong to the page and are only placed into the banner's and strip's layouts,
    so run_widgets.py stays free of training logic.
    """
    page.summary_resume_button.hide()
    summary_layout = page.summary.layout()
    if summary_layout is not None:
        summary_layout.addWidget(page.summary_resume_button)
    status_layout = page.run_status.layout()
    if status_layout is not None:
        index = status_layout.indexOf(page.run_status.speed_label)
        status_layout.insertWidget(index + 1 if index >= 0 else -1, page.data_wait_label)
        status_layout.insertWidget(status_layout.indexOf(page.data_wait_label) + 1, page.workers_label)
