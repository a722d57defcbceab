"""Work-arounds for bugs of the Qt binding in the versions requirements.txt allows.

PySide6/shiboken6 6.12.0 on CPython 3.11 drops one reference to None on every call of a C++
method that returns void (setText, setEnabled, click, ...) and one to True on every
Signal.emit(). On CPython 3.12+ those singletons are immortal and nothing happens; on 3.11
(which this project requires) their count reaches zero after some thousands of calls and the
process aborts with "Fatal Python error: none_dealloc" (or bool_dealloc), in minutes of training.

None, True and False are static objects that are never freed, so giving them a huge reference
count is harmless: it is what CPython 3.12 does for them (PEP 683). The proper fix is a binding
without the bug (PySide6 below 6.12, or a fixed 6.12.x); this guard only runs where the bug can.
"""

from __future__ import annotations

import ctypes
import sys

# Far above any count a run could drop, far below the largest Py_ssize_t.
_HEADROOM = 1 << 60


def binding_drops_singleton_references() -> bool:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    import PySide6

    major, minor = (int(part) for part in PySide6.__version__.split(".")[:2])
    return (major, minor) == (6, 12)


def make_singletons_immortal() -> bool:
    """Raises the reference counts of None, True and False out of reach; True when it did."""
    if not binding_drops_singleton_references():
        return False
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt is the first field
        if refcount.value < _HEADROOM // 2:
            refcount.value += _HEADROOM
    return True
