"""Start-up checks of the application that run before Qt gets a chance to abort."""

import ctypes

from gui import app


def test_missing_x11_libraries_are_named_with_the_packages_to_install(monkeypatch, capsys):
    real_cdll = ctypes.CDLL

    def without_cursor(name, *args, **kwargs):
        if name == "libxcb-cursor.so.0":
            raise OSError(f"{name}: cannot open shared object file")
        return real_cdll(name, *args, **kwargs)

    monkeypatch.setattr(app.ctypes, "CDLL", without_cursor)
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "libxcb-cursor0" in app.missing_x11_packages()
    assert app.run_app() == 2
    assert "sudo apt install libxcb-cursor0" in capsys.readouterr().err


def test_no_check_off_x11(monkeypatch):
    monkeypatch.setattr(app.ctypes, "CDLL", lambda *a, **k: (_ for _ in ()).throw(OSError("none")))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert app.missing_x11_packages() == []
