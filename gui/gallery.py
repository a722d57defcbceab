"""A gallery of image thumbnails with captions and probability bars (evaluation mistakes, predictions).

Thumbnails are loaded by gui.thumbnails.ThumbnailLoader (off the GUI thread, cached) only when a
card is first painted. Double click (or Enter) emits `open_requested(path)`.

With `show_heatmaps(True)` and a heatmap loader (gui.heatmaps.HeatmapLoader), each card shows the
heatmap overlay of every class its item names in `explain`, side by side, instead of the thumbnail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QMenu, QStyle, QStyledItemDelegate, QWidget

from gui.thumbnails import THUMBNAIL_SIZE, ThumbnailLoader

ITEM_ROLE = Qt.ItemDataRole.UserRole + 1
HEATMAP_ROLE = Qt.ItemDataRole.UserRole + 2

GREEN, RED, BLUE, GREY = "#12b76a", "#f04438", "#2563eb", "#98a2b3"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # 0..1
    colour: str = BLUE


@dataclass(frozen=True)
class GalleryItem:
    path: str
    title: str
    bars: tuple[Bar, ...] = ()
    tooltip: str = ""
    accent: str = ""  # the card's border colour; "" for the neutral one
    data: object = field(default=None, compare=False)  # what the page wants back (an ImageResult...)
    explain: tuple[int, ...] = ()  # the classes whose heatmaps the card shows in heatmap mode
    explain_labels: tuple[str, ...] = ()  # a caption for each


class GalleryModel(QAbstractListModel):
    def __init__(self, loader: ThumbnailLoader, parent: QObject | None = None):
        super().__init__(parent)
        self.loader = loader
        self.heatmaps = None  # a gui.heatmaps.HeatmapLoader, when the page offers heatmaps
        self.heatmaps_shown = False
        self.items: list[GalleryItem] = []
        self._rows: dict[str, list[int]] = {}
        loader.loaded.connect(self._thumbnail_loaded)

    def set_heatmap_loader(self, heatmaps) -> None:
        self.heatmaps = heatmaps
        heatmaps.loaded.connect(self._heatmap_loaded)

    def set_items(self, items: list[GalleryItem]) -> None:
        self.beginResetModel()
        self.loader.clear_pending()
        self.items = list(items)
        self._rows = {}
        for row, item in enumerate(self.items):
            self._rows.setdefault(item.path, []).append(row)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.items)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.items):
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.title
        if role == Qt.ItemDataRole.DecorationRole:
            return self.loader.get(item.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.tooltip or item.path
        if role == ITEM_ROLE:
            return item
        if role == HEATMAP_ROLE:
            return self._heatmaps(item)
        return None

    def _heatmaps(self, item: GalleryItem) -> list[QPixmap] | str | None:
        """The item's heatmap overlays; "failed" or "waiting" while there are none; None when the
        gallery shows thumbnails."""
        if not (self.heatmaps_shown and self.heatmaps is not None and item.explain):
            return None
        pixmaps = self.heatmaps.get(item.path, item.explain)
        if pixmaps is None:
            return "failed" if self.heatmaps.failed(item.path, item.explain) else "waiting"
        return pixmaps

    def _thumbnail_loaded(self, path: str) -> None:
        for row in self._rows.get(path, ()):
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def _heatmap_loaded(self, path: str) -> None:
        if self.heatmaps_shown:
            for row in self._rows.get(path, ()):
                index = self.index(row)
                self.dataChanged.emit(index, index, [HEATMAP_ROLE])


class GalleryDelegate(QStyledItemDelegate):
    """A card: the thumbnail, a title, and one labelled bar per probability."""

    PAD, TITLE_H, BAR_H, BAR_GAP = 6, 18, 15, 3

    def __init__(self, thumbnail_size: int, bars: int, parent: QObject | None = None):
        super().__init__(parent)
        self.thumb, self.bars = thumbnail_size, bars
        self.columns = 1  # images side by side: the heatmaps of two classes make a card wider

    def sizeHint(self, option, index) -> QSize:
        height = self.PAD + self.thumb + 4 + self.TITLE_H + self.bars * (self.BAR_H + self.BAR_GAP) + self.PAD
        width = self.columns * self.thumb + (self.columns - 1) * self.PAD
        return QSize(width + 2 * self.PAD + 16, height)

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        item: GalleryItem | None = index.data(ITEM_ROLE)
        if item is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = QRect(option.rect).adjusted(2, 2, -2, -2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        border = QColor(BLUE if selected else (item.accent or ("#b2c5f0" if hovered else "#e4e7ec")))
        painter.setPen(QPen(border, 2 if selected else 1))
        painter.setBrush(QColor("#eff4ff" if selected else "#ffffff"))
        painter.drawRoundedRect(card, 6, 6)
        inner = card.adjusted(self.PAD, self.PAD, -self.PAD, -self.PAD)
        image_rect = QRect(inner.left(), inner.top(), inner.width(), self.thumb)
        heatmaps = index.data(HEATMAP_ROLE)
        if heatmaps is None:
            self._paint_thumbnail(painter, image_rect, index, item)
        else:
            self._paint_heatmaps(painter, image_rect, heatmaps, item, option.font)
        y = image_rect.bottom() + 5
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor("#101828"))
        metrics = QFontMetrics(font)
        title_rect = QRect(inner.left(), y, inner.width(), self.TITLE_H)
        painter.drawText(
            title_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(item.title, Qt.TextElideMode.ElideMiddle, inner.width()),
        )
        y += self.TITLE_H
        small = QFont(option.font)
        small.setPointSizeF(max(6.5, option.font.pointSizeF() * 0.85))
        painter.setFont(small)
        for bar in item.bars:
            self._paint_bar(painter, QRect(inner.left(), y, inner.width(), self.BAR_H), bar, small)
            y += self.BAR_H + self.BAR_GAP
        painter.restore()

    def _paint_thumbnail(self, painter: QPainter, rect: QRect, index: QModelIndex, item: GalleryItem) -> None:
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#f2f4f7"))
        painter.drawRoundedRect(rect, 4, 4)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            scaled = pixmap.scaled(
                rect.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation
                if max(pixmap.width(), pixmap.height()) >= 48
                else Qt.TransformationMode.FastTransformation,
            )
            top_left = QPoint(
                rect.left() + (rect.width() - scaled.width()) // 2,
                rect.top() + (rect.height() - scaled.height()) // 2,
            )
            painter.drawPixmap(top_left, scaled)
            return
        model = index.model()
        failed = isinstance(model, GalleryModel) and model.loader.failed(item.path)
        painter.setPen(QColor(RED if failed else GREY))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "cannot show" if failed else "loading…")

    def _paint_heatmaps(
        self, painter: QPainter, rect: QRect, heatmaps, item: GalleryItem, font: QFont
    ) -> None:
        """One cell per explained class: its heatmap overlay with the class as a caption below."""
        count = len(item.explain)
        width = (rect.width() - (count - 1) * self.PAD) // count
        small = QFont(font)
        small.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
        caption_height = QFontMetrics(small).height() + 2
        for column in range(count):
            cell = QRect(rect.left() + column * (width + self.PAD), rect.top(), width, rect.height())
            picture = cell.adjusted(0, 0, 0, -caption_height)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#f2f4f7"))
            painter.drawRoundedRect(picture, 4, 4)
            if isinstance(heatmaps, list) and column < len(heatmaps):
                self._paint_centred(painter, picture, heatmaps[column])
            else:
                failed = heatmaps == "failed"
                painter.setPen(QColor(RED if failed else GREY))
                text = "no heatmap" if failed else "computing…"
                painter.drawText(picture, Qt.AlignmentFlag.AlignCenter, text)
            caption = item.explain_labels[column] if column < len(item.explain_labels) else ""
            painter.setFont(small)
            painter.setPen(QColor("#344054"))
            painter.drawText(
                QRect(cell.left(), picture.bottom() + 2, cell.width(), caption_height),
                Qt.AlignmentFlag.AlignCenter,
                QFontMetrics(small).elidedText(caption, Qt.TextElideMode.ElideRight, cell.width()),
            )

    @staticmethod
    def _paint_centred(painter: QPainter, rect: QRect, pixmap: QPixmap) -> None:
        scaled = pixmap.scaled(
            rect.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        left = rect.left() + (rect.width() - scaled.width()) // 2
        painter.drawPixmap(QPoint(left, rect.top() + (rect.height() - scaled.height()) // 2), scaled)

    def _paint_bar(self, painter: QPainter, rect: QRect, bar: Bar, font: QFont) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#f2f4f7"))
        painter.drawRoundedRect(rect, 3, 3)
        fill = QColor(bar.colour)
        fill.setAlpha(70)
        width = int(rect.width() * max(0.0, min(1.0, bar.value)))
        if width > 0:
            painter.setBrush(fill)
            painter.drawRoundedRect(QRect(rect.left(), rect.top(), max(width, 4), rect.height()), 3, 3)
        metrics = QFontMetrics(font)
        percent = f"{bar.value:.1%}"
        text_rect = rect.adjusted(4, 0, -4, 0)
        label_width = text_rect.width() - metrics.horizontalAdvance(percent) - 6
        painter.setPen(QColor(bar.colour).darker(150))
        painter.drawText(
            text_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(bar.label, Qt.TextElideMode.ElideRight, label_width),
        )
        painter.setPen(QColor("#344054"))
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, percent)


class Gallery(QListView):
    """Thumbnail cards in a wrapping grid. `open_requested(path)` on double click or Enter."""

    open_requested = Signal(str)
    item_selected = Signal(object)  # GalleryItem or None

    def __init__(
        self,
        bars: int = 2,
        placeholder: str = "",
        thumbnail_size: int = THUMBNAIL_SIZE,
        loader: ThumbnailLoader | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setObjectName("gallery")
        self.loader = loader or ThumbnailLoader(thumbnail_size, self)
        self.gallery_model = GalleryModel(self.loader, self)
        self.setModel(self.gallery_model)
        self.setItemDelegate(GalleryDelegate(thumbnail_size, bars, self))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSpacing(4)
        self.setMouseTracking(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.doubleClicked.connect(self._activated)
        self.placeholder = placeholder
        self._heatmap_columns = 1
        self.drop_target = False  # when empty, draw the placeholder as a place to drop files
        self.selectionModel().currentChanged.connect(
            lambda index, _old: self.item_selected.emit(index.data(ITEM_ROLE) if index.isValid() else None)
        )

    def set_items(self, items: list[GalleryItem]) -> None:
        if self.gallery_model.heatmaps is not None:
            self.gallery_model.heatmaps.clear_pending()
        self.gallery_model.set_items(items)
        self.scrollToTop()
        self.viewport().update()

    def set_heatmap_loader(self, heatmaps, columns: int = 1) -> None:
        """Lets the cards show heatmaps from `heatmaps` (a gui.heatmaps.HeatmapLoader); `columns`:
        how many side by side a card has room for."""
        self.gallery_model.set_heatmap_loader(heatmaps)
        self._heatmap_columns = columns

    @property
    def heatmaps_shown(self) -> bool:
        return self.gallery_model.heatmaps_shown

    def show_heatmaps(self, shown: bool) -> None:
        """Heatmap overlays (computed as cards come into view) instead of thumbnails, or back."""
        model = self.gallery_model
        if model.heatmaps is None or shown == model.heatmaps_shown:
            return
        model.heatmaps_shown = shown
        if not shown:
            model.heatmaps.clear_pending()
        delegate = self.itemDelegate()
        delegate.columns = self._heatmap_columns if shown else 1
        # The cards change size: a reset makes the view measure them again (uniform sizes are cached).
        current = self.currentIndex().row()
        model.beginResetModel()
        model.endResetModel()
        if current >= 0:
            self.setCurrentIndex(model.index(current))
        self.viewport().update()

    def items(self) -> list[GalleryItem]:
        return list(self.gallery_model.items)

    def count(self) -> int:
        return len(self.gallery_model.items)

    def clear(self) -> None:
        self.set_items([])

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.viewport().update()

    def _activated(self, index: QModelIndex) -> None:
        item = index.data(ITEM_ROLE)
        if item is not None:
            self.open_requested.emit(item.path)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self._activated(self.currentIndex())
            return
        super().keyPressEvent(event)

    def _context_menu(self, position: QPoint) -> None:
        index = self.indexAt(position)
        item: GalleryItem | None = index.data(ITEM_ROLE) if index.isValid() else None
        if item is None:
            return
        menu = QMenu(self)
        open_action = QAction("Open image", menu)
        open_action.triggered.connect(lambda: self.open_requested.emit(item.path))
        folder_action = QAction("Open containing folder", menu)
        folder_action.triggered.connect(lambda: self.open_requested.emit(os.path.dirname(item.path)))
        copy_action = QAction("Copy path", menu)
        copy_action.triggered.connect(lambda: QGuiApplication.clipboard().setText(item.path))
        for action in (open_action, folder_action, copy_action):
            menu.addAction(action)
        menu.popup(self.viewport().mapToGlobal(position))

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.gallery_model.rowCount() == 0 and self.placeholder:
            painter = QPainter(self.viewport())
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            area = self.viewport().rect().adjusted(16, 16, -16, -16)
            if self.drop_target:
                pen = QPen(QColor("#b2c5f0"), 2, Qt.PenStyle.DashLine)
                painter.setPen(pen)
                painter.setBrush(QColor("#f8faff"))
                painter.drawRoundedRect(area, 10, 10)
                font = QFont(self.font())
                font.setPointSizeF(font.pointSizeF() * 1.25)
                painter.setFont(font)
            painter.setPen(QColor("#475467"))
            painter.drawText(
                area.adjusted(24, 24, -24, -24),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            painter.end()

    def shutdown(self) -> None:
        self.loader.stop()
