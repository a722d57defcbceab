"""Capturing frames into class folders: names that never collide, undo that deletes only what the
burst wrote, the video reader on a real, a truncated and an unsupported file, and `capture --video`."""

import argparse
import io
import os
import signal
import time

import numpy as np
import pytest
from PIL import Image
from videos import FPS, cut_in_half, make_video, turn_mp4

from core.cli.capture_command import run_capture
from core.data.capture import CaptureError, CaptureLog, add_class_folder, save_frame
from core.data.dataset import inspect
from core.data.video import UnreadableVideo, VideoReader
from core.errors import FitStudioError

FRAME = np.full((48, 64, 3), (50, 70, 220), np.uint8)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(str(tmp_path_factory.mktemp("video") / "colours.mp4"))  # 3 s, 30 frames


def test_frames_get_new_names_and_never_overwrite(tmp_path):
    folder = add_class_folder(str(tmp_path), "blue")
    moment = 1767268800.0
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(moment))
    with open(os.path.join(folder, f"blue-{stamp}-1.jpg"), "wb") as handle:
        handle.write(b"someone else's file")
    saved = [save_frame(FRAME, folder, now=moment) for _ in range(3)]
    assert [os.path.basename(s.path) for s in saved] == [f"blue-{stamp}-{n}.jpg" for n in (2, 3, 4)]
    with open(os.path.join(folder, f"blue-{stamp}-1.jpg"), "rb") as handle:
        assert handle.read() == b"someone else's file"
    with Image.open(saved[0].path) as image:
        assert image.format == "JPEG" and image.size == (64, 48)


def test_size_shrinks_the_longer_side(tmp_path):
    saved = save_frame(np.zeros((300, 400, 3), np.uint8), str(tmp_path), size=100)
    with Image.open(saved.path) as image:
        assert image.size == (100, 75)


def test_undo_deletes_only_the_last_bursts_unchanged_files(tmp_path):
    root = str(tmp_path)
    log = CaptureLog()
    first = log.start("blue", add_class_folder(root, "blue"))
    for _ in range(2):
        log.save(first, FRAME)
    second = log.start("red", add_class_folder(root, "red"))
    saved = [log.save(second, FRAME) for _ in range(3)]
    neighbour = os.path.join(root, "red", "mine.jpg")
    Image.fromarray(FRAME).save(neighbour)
    with open(saved[1].path, "ab") as handle:  # edited since the burst wrote it: kept
        handle.write(b"\0\0")
    empty = log.start("green", add_class_folder(root, "green"))
    log.finish(empty)  # a press that saved nothing is not what undo undoes

    result = log.undo_last()
    assert (result.class_name, result.removed, result.kept) == ("red", 2, [saved[1].path])
    left = sorted(os.listdir(os.path.join(root, "red")))
    assert left == sorted(["mine.jpg", os.path.basename(saved[1].path)])
    assert log.undo_last().removed == 2 and os.listdir(os.path.join(root, "blue")) == []
    assert log.undo_last() is None


@pytest.mark.parametrize("name", ["", "  ", ".hidden", "a/b", "..", "_quarantine"])
def test_class_names_that_cannot_be_folders_are_refused(tmp_path, name):
    with pytest.raises(CaptureError):
        add_class_folder(str(tmp_path), name)
    assert os.listdir(tmp_path) == []


def test_an_unwritable_folder_is_a_message_not_a_crash(tmp_path):
    with pytest.raises(CaptureError, match="Cannot save a frame"):
        save_frame(FRAME, str(tmp_path / "missing"))


def test_the_reader_samples_by_time(video):
    with VideoReader(video) as reader:
        frames = list(reader.frames(every_s=0.5))
        assert reader.end.complete and reader.end.frames_decoded == 3 * FPS
    assert [round(f.time_s, 2) for f in frames] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert frames[0].rgb.shape == (48, 64, 3) and frames[0].rgb.dtype == np.uint8
    # blue in the first second, red in the last (the codec's colours are close, not exact)
    assert np.argmax(frames[0].rgb[30:, :, :].mean(axis=(0, 1))) == 2
    assert np.argmax(frames[-1].rgb[30:, :, :].mean(axis=(0, 1))) == 0


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_video_recorded_turned_comes_out_upright(tmp_path, degrees):
    path = make_video(str(tmp_path / "phone.mp4"), colours=("blue",), seconds_each=0.3)
    with VideoReader(path) as reader:
        plain = next(reader.frames()).rgb
    with VideoReader(turn_mp4(path, degrees)) as reader:
        upright = next(reader.frames()).rgb
    # clockwise, as QtMultimedia shows it (tests/gui/test_camera_page.py compares the two)
    np.testing.assert_array_equal(upright, np.rot90(plain, -degrees // 90))


def test_a_truncated_video_keeps_its_frames_and_says_where_it_stopped(video, tmp_path):
    cut = cut_in_half(video, str(tmp_path / "cut.mp4"))
    with VideoReader(cut) as reader:
        frames = list(reader.frames())
    end = reader.end
    assert FPS <= len(frames) < 3 * FPS and not end.complete  # about half of the frames survive the cut
    assert end.last_time_s == pytest.approx(frames[-1].time_s)
    assert f"{end.last_time_s:.2f} s of 3.00 s" in end.describe()


@pytest.mark.parametrize("content", [b"this is a text file, not a video\n", os.urandom(4096), b""])
def test_files_that_are_no_video_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(UnreadableVideo, match=r"clip\.mp4"):
        VideoReader(str(path))


def _capture_args(video, into, every=None, max_frames=None, size=None):
    return argparse.Namespace(video=video, into=into, every=every, max=max_frames, size=size)


def test_capture_command_saves_sampled_frames_into_a_new_class(video, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    into = str(tmp_path / "train" / "blue")
    assert run_capture(_capture_args(video, into, every=0.25, max_frames=4, size=32), out, err) == 0
    names = sorted(os.listdir(into))
    assert len(names) == 4 and all(n.startswith("blue-") and n.endswith(".jpg") for n in names)
    with Image.open(os.path.join(into, names[0])) as image:
        assert image.size == (32, 24)
    assert "Saved 4 frames" in out.getvalue() and err.getvalue() == ""
    assert inspect(str(tmp_path / "train")).counts == {"blue": 4}


def test_capture_command_on_a_truncated_video_keeps_frames_and_warns(video, tmp_path):
    cut = cut_in_half(video, str(tmp_path / "cut.mp4"))
    out, err = io.StringIO(), io.StringIO()
    into = str(tmp_path / "train" / "red")
    assert run_capture(_capture_args(cut, into), out, err) == 0
    saved = len(os.listdir(into))
    assert FPS <= saved < 3 * FPS
    assert f"Saved {saved} frames" in out.getvalue()
    assert "Warning: The video stops after frame" in err.getvalue()


def test_capture_command_refuses_an_unsupported_file_with_exit_2(tmp_path):
    import subprocess
    import sys

    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        [sys.executable, os.path.join(root, "main.py"), "capture", "--video", str(text),
         "--into", str(tmp_path / "train" / "x")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "notes.mp4 is not a video FFmpeg can read" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "train").exists()  # nothing created for a file that is no video


def test_capture_errors_are_fitstudio_errors():
    assert issubclass(UnreadableVideo, FitStudioError) and issubclass(CaptureError, FitStudioError)


def test_ctrl_c_during_capture_keeps_the_frames_saved_and_exits_130(video, tmp_path, monkeypatch):
    saves = []
    original = CaptureLog.save

    def save_then_press_ctrl_c(self, burst, rgb, size=None):
        saves.append(original(self, burst, rgb, size))
        if len(saves) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: stop after this frame
        return saves[-1]

    monkeypatch.setattr(CaptureLog, "save", save_then_press_ctrl_c)
    err = io.StringIO()
    into = str(tmp_path / "train" / "blue")
    assert run_capture(_capture_args(video, into), io.StringIO(), err) == 130
    assert len(os.listdir(into)) == 3 and "Stopped: 3 frames saved" in err.getvalue()
