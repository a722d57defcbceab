"""The FitStudio window: widgets only; training runs in core/ on a worker thread."""

from gui.compat import make_singletons_immortal

make_singletons_immortal()  # before any Qt call: see gui/compat.py
