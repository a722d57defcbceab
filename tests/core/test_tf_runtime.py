"""core.tf_runtime: TensorFlow is imported once, under one lock, whichever threads ask at the same time.

The Loader tests use a slow stand-in import to show the locking; the last test races the real
device probe against the real engine modules in a fresh interpreter, where TensorFlow is not yet loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types

import pytest

from core import tf_runtime
from core.tf_runtime import FAILED, LOADED, LOADING, Loader

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SlowImport:
    """Counts imports and takes a while, so that every thread arrives while the first one imports."""

    def __init__(self, fail: bool = False):
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    def __call__(self, name: str) -> types.ModuleType:
        self.calls.append((name, threading.current_thread().name))
        time.sleep(0.2)
        if self.fail:
            raise ImportError(f"No module named '{name}'")
        return types.ModuleType(name)


def load_from_threads(loader: Loader, count: int) -> list:
    results: list = []

    def load() -> None:
        try:
            results.append(loader.load())
        except ImportError as exc:
            results.append(exc)

    threads = [threading.Thread(target=load, name=f"loader-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_one_thread_imports_and_the_others_wait_for_the_same_modules():
    slow = SlowImport()
    loader = Loader(("tensorflow", "keras"), slow)
    heard: list[str] = []
    loader.add_listener(lambda state: heard.append(state) or seen_loading.append(loader.is_loading()))
    seen_loading: list[bool] = []
    assert not loader.is_loaded() and not loader.is_loading()
    results = load_from_threads(loader, 4)
    assert [name for name, _ in slow.calls] == ["tensorflow", "keras"]  # once, in order
    assert len({thread for _, thread in slow.calls}) == 1
    assert len(results) == 4 and all(result is results[0] for result in results)
    assert loader.is_loaded() and heard == [LOADING, LOADED] and seen_loading == [True, False]
    assert loader.load() is results[0] and len(slow.calls) == 2  # later calls import nothing


def test_the_repair_after_the_import_runs_once_before_any_caller_gets_the_modules():
    repaired: list[dict] = []
    loader = Loader(("tensorflow", "keras"), SlowImport(), after=repaired.append)
    results = load_from_threads(loader, 3)
    assert len(repaired) == 1 and repaired[0] is results[0]
    assert loader.load() is results[0] and len(repaired) == 1


def test_a_failed_import_reaches_every_caller_and_the_next_call_tries_again():
    slow = SlowImport(fail=True)
    loader = Loader(("tensorflow",), slow)
    heard: list[str] = []
    loader.add_listener(heard.append)
    results = load_from_threads(loader, 2)
    assert all(isinstance(result, ImportError) for result in results)
    assert not loader.is_loaded() and not loader.is_loading()
    assert heard == [LOADING, FAILED, LOADING, FAILED]
    slow.fail = False
    assert loader.load()["tensorflow"].__name__ == "tensorflow"


def test_a_broken_listener_never_breaks_loading():
    loader = Loader(("keras",), SlowImport())

    def closed_window(state: str) -> None:
        raise RuntimeError("Internal C++ object already deleted.")

    heard: list[str] = []
    loader.add_listener(closed_window)
    loader.add_listener(heard.append)
    assert loader.load()["keras"].__name__ == "keras"
    assert heard == [LOADING, LOADED]
    loader.remove_listener(heard.append)
    loader.remove_listener(heard.append)  # twice: harmless


def test_the_process_loader_gives_the_real_modules():
    keras = tf_runtime.load_keras()
    assert tf_runtime.is_loaded()
    assert tf_runtime.load_tensorflow().__name__ == "tensorflow" and keras.__name__ == "keras"


@pytest.mark.timeout(240)
def test_the_device_probe_and_the_engine_modules_load_tensorflow_at_the_same_time():
    """Three threads of a fresh interpreter need TensorFlow at once, as the window's device probe, the
    training thread and the model thread do (before core.tf_runtime, this failed with "deadlock
    detected by _ModuleLock" or a half-imported module)."""
    code = """
import importlib, threading
from core.training.device import describe_compute_device
failures = []
def run(job):
    try:
        job()
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
jobs = [describe_compute_device, lambda: importlib.import_module("core.data.pipeline"),
        lambda: importlib.import_module("core.modeling.models")]
threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
for thread in threads: thread.start()
for thread in threads: thread.join()
print("failures:", failures)
"""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=220)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "failures: []" in done.stdout, done.stdout


def test_no_collection_during_the_import_and_its_objects_frozen_after():
    import gc

    seen, kept = [], []

    def import_and_watch(name):
        seen.append(gc.isenabled())
        module = types.ModuleType(name)
        module.cycle = [module]  # a long-lived object made by the import
        kept.append(module)
        return module

    gc.unfreeze()
    try:
        Loader(("framework",), import_and_watch).load()
        assert seen == [False]  # no collection ran while it imported
        assert gc.isenabled() and gc.get_freeze_count() > 0  # its objects are out of the collector's way
        with pytest.raises(ImportError):
            Loader(("broken",), SlowImport(fail=True)).load()
        assert gc.isenabled()  # a failed import turns the collector back on too
    finally:
        gc.unfreeze()


def test_keras_saving_finds_its_attribute_skipsets_again_and_models_still_round_trip(tmp_path):
    keras = tf_runtime.load_keras()
    from keras.src.saving import saving_lib

    assert saving_lib.get_attr_skipset("Layer") is saving_lib.get_attr_skipset("Layer")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="classes")(keras.layers.Dropout(0.1)(inputs)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for ours, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert (ours == theirs).all()
