"""Where the Camera tab's frames come from: a camera, or a video file played, through one QVideoSink.

This is the only module that imports QtMultimedia (PySide6-Addons), and gui.camera_page imports it
when the tab is first shown, so opening the window never loads it. Every frame the sink receives
leaves here as a plain (h, w, 3) uint8 RGB array; tests push frames into `sink` themselves
(`sink.setVideoFrame(QVideoFrame(QImage))`), exactly as a camera would deliver them.

A camera delivers frames at its own pace. Were each one converted and shown as it came, a GUI thread
slower than the camera (a large frame, a heatmap, a busy machine) would fall further and further
behind. So a frame is only kept on arrival, and converted on the next turn of the event loop: frames
that came meanwhile are replaced by the newest (`skipped` counts them), and the view stays live.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QImage
from PySide6.QtMultimedia import (
    QCamera,
    QCameraDevice,
    QMediaCaptureSession,
    QMediaDevices,
    QMediaPlayer,
    QVideoFrame,
    QVideoSink,
)


def image_to_rgb(image: QImage) -> np.ndarray:
    """A QImage as an (h, w, 3) uint8 RGB array that owns its memory."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width, stride = image.height(), image.width(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


class FrameSource(QObject):
    frame = Signal(object)  # np.ndarray (h, w, 3) uint8 RGB
    problem = Signal(str)  # a camera or a video that cannot be used
    video_ended = Signal()
    cameras_changed = Signal()  # a camera was plugged in or out

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.sink = QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._on_frame)
        # One camera, one capture session and one player for the source's whole life: switching
        # hands them a new device or file, and the sink goes to whichever plays. (Destroying a player
        # whose FFmpeg threads are still winding down crashed the next event loop in the tests.)
        self.camera = QCamera(self)
        self.camera.errorOccurred.connect(
            lambda _error, text: self.problem.emit(f"The camera failed: {text}")
        )
        self.session = QMediaCaptureSession(self)
        self.session.setCamera(self.camera)
        self.player = QMediaPlayer(self)
        self.player.errorOccurred.connect(
            lambda _error, text: self.problem.emit(f"This video cannot be played: {text}")
        )
        self.player.mediaStatusChanged.connect(self._on_media_status)
        self.playing: str | None = None  # "camera", "video" or None
        self.skipped = 0
        self._latest: QVideoFrame | None = None
        self.devices = QMediaDevices(self)
        self.devices.videoInputsChanged.connect(self.cameras_changed)

    @staticmethod
    def cameras() -> list[QCameraDevice]:
        return list(QMediaDevices.videoInputs())

    def use_camera(self, device: QCameraDevice) -> None:
        self.stop()
        self.session.setVideoSink(self.sink)
        self.camera.setCameraDevice(device)
        self.camera.start()
        self.playing = "camera"

    def open_video(self, path: str) -> None:
        self.stop()
        self.player.setVideoSink(self.sink)
        self.player.setSource(QUrl.fromLocalFile(path))
        self.player.play()
        self.playing = "video"

    def stop(self) -> None:
        if self.playing == "camera":
            self.camera.stop()
            self.session.setVideoSink(None)
        elif self.playing == "video":
            self.player.stop()
            self.player.setSource(QUrl())
            self.player.setVideoSink(None)
        self.playing = None

    @property
    def running(self) -> bool:
        return self.playing is not None

    def _on_media_status(self, status) -> None:
        if status == QMediaPlayer.MediaStatus.EndOfMedia:
            self.video_ended.emit()
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            self.problem.emit("This file is not a video that can be played.")

    def _on_frame(self, frame: QVideoFrame) -> None:
        if not frame.isValid():
            return
        if self._latest is not None:
            self.skipped += 1
        else:
            QTimer.singleShot(0, self._deliver)
        self._latest = frame

    def _deliver(self) -> None:
        frame, self._latest = self._latest, None
        if frame is None:
            return
        image = frame.toImage()
        if not image.isNull():
            self.frame.emit(image_to_rgb(image))
