"""The one place that imports TensorFlow and Keras, once, for every thread of the process.

Python's per-module import locks do not make a package as large as TensorFlow safe to import from two
threads at once: each thread takes the locks of TensorFlow's modules in its own order, and one of
them fails with "deadlock detected by _ModuleLock" or finds a half-initialised module ("module
'tensorflow.python.data.ops.dataset_ops' has no attribute 'DatasetV2'"). So no module of FitStudio
imports TensorFlow or Keras itself (tests/core/test_architecture.py checks it): each asks
`load_keras()` or `load_tensorflow()`, which import under one lock while other threads wait.

Importing this module imports nothing heavy. Listeners (`add_listener`) hear "loading", then
"loaded" or "failed", on the thread that loads; the window uses them to say why it waits.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import threading
from collections.abc import Callable
from types import ModuleType

LOADING, LOADED, FAILED = "loading", "loaded", "failed"

Listener = Callable[[str], None]


class Loader:
    """Imports `names` in order, once, under one lock; later calls return the cached modules."""

    def __init__(self, names: tuple[str, ...], import_module: Callable[[str], ModuleType],
                 after: Callable[[dict[str, ModuleType]], None] | None = None):
        self._names = names
        self._import = import_module
        self._after = after  # called with the modules once, before any caller gets them
        self._lock = threading.Lock()
        self._modules: dict[str, ModuleType] = {}
        self._loading = False
        self._listeners: list[Listener] = []

    def load(self) -> dict[str, ModuleType]:
        if self._modules:  # a finished load: no lock needed to read a dict that no longer changes
            return self._modules
        with self._lock:
            if not self._modules:
                self._import_all()
            return self._modules

    def _import_all(self) -> None:
        self._loading = True
        self._tell(LOADING)
        # The frameworks bring about a million objects that live as long as the process. While they
        # are created, the collector would walk them again and again (full collections of up to a
        # second that stop every thread); afterwards they are moved out of its sight (freeze), so a
        # full collection while a run trains no longer stops the window for 200-300 ms
        # (bench/responsiveness.py's stall table found both).
        collecting = gc.isenabled()
        gc.disable()
        try:
            modules = {name: self._import(name) for name in self._names}
            if self._after is not None:
                self._after(modules)
        except BaseException:
            self._loading = False
            self._tell(FAILED)
            raise
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
        self._modules, self._loading = modules, False
        self._tell(LOADED)

    def is_loaded(self) -> bool:
        return bool(self._modules)

    def is_loading(self) -> bool:
        """A thread is importing right now (and any other that asks waits for it)."""
        return self._loading

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _tell(self, state: str) -> None:
        for listener in list(self._listeners):
            # A listener (a closed window) must never break loading for the engine.
            with contextlib.suppress(Exception):
                listener(state)


# Imported by name, so tools that follow import statements (PyInstaller) cannot see them:
# packaging/fitstudio.spec lists these as hidden imports.
FRAMEWORK_MODULES = ("tensorflow", "keras")
TF2ONNX_MODULES = ("tf2onnx", "tf2onnx.convert", "tf2onnx.tf_loader")


def _repair_keras(modules: dict[str, ModuleType]) -> None:
    """Keras 3.15's `saving_lib.get_attr_skipset` keeps its answer under "saving_attr_skipset_<type>"
    but looks for it under "saving_attr_skiplist_<type>", so it never finds it: saving or loading a
    model builds and lists a throwaway Layer for each of its layers, 0.1 s of the 0.3 s a MobileNetV2
    save takes. The answer depends on the type alone, so a cache by type is what Keras meant."""
    saving_lib = importlib.import_module("keras.src.saving.saving_lib")
    skipset = getattr(saving_lib, "get_attr_skipset", None)
    if skipset is not None and not hasattr(skipset, "cache_info"):
        saving_lib.get_attr_skipset = functools.cache(skipset)


_loader = Loader(FRAMEWORK_MODULES, importlib.import_module, after=_repair_keras)


def load_tensorflow() -> ModuleType:
    """The `tensorflow` module, imported by the first caller while any other caller waits."""
    return _loader.load()["tensorflow"]


def load_keras() -> ModuleType:
    """The `keras` module (loaded together with TensorFlow, its backend)."""
    return _loader.load()["keras"]


def load_tf2onnx() -> ModuleType:
    """`tf2onnx` with its `convert` and `tf_loader` modules, for ONNX export; it imports TensorFlow,
    which is loaded first, here. ImportError when tf2onnx is not installed."""
    load_tensorflow()
    return _tf2onnx_loader.load()["tf2onnx"]


_tf2onnx_loader = Loader(TF2ONNX_MODULES, importlib.import_module)


def is_loaded() -> bool:
    return _loader.is_loaded()


def is_loading() -> bool:
    return _loader.is_loading()


def add_listener(listener: Listener) -> None:
    """listener(state) with LOADING, then LOADED or FAILED, called on the thread that loads."""
    _loader.add_listener(listener)


def remove_listener(listener: Listener) -> None:
    _loader.remove_listener(listener)
