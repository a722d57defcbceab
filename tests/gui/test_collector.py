"""gui.collector: garbage is collected on the GUI thread only, never on a worker thread."""

import gc
import threading

from gui.collector import GuiThreadCollector, collect_on_gui_thread


class Cycle:
    """An object in a reference cycle that records the thread that finally collects it."""

    collected_on: list[str] = []

    def __init__(self):
        self.me = self

    def __del__(self):
        Cycle.collected_on.append(threading.current_thread().name)


def test_a_cycle_dropped_while_a_worker_allocates_is_collected_on_the_gui_thread(qapp):
    # the autouse fixture already runs a collector for this test, as the app does
    assert not gc.isenabled()
    Cycle.collected_on.clear()
    Cycle()  # garbage in a cycle: only a collection frees it

    kept = []  # alive until the end: freed objects would count the collector's counter back down

    def allocate_a_lot():
        kept.append([[index] for index in range(200_000)])  # far past every threshold

    worker = threading.Thread(target=allocate_a_lot, name="worker")
    worker.start()
    worker.join(timeout=60)
    assert Cycle.collected_on == []  # the worker's allocations collected nothing
    GuiThreadCollector().collect_due()
    assert Cycle.collected_on == [threading.main_thread().name]
    kept.clear()


def test_stop_collects_once_and_gives_collection_back_to_python(qapp):
    collector = GuiThreadCollector()
    collector.start()
    assert not gc.isenabled() and collector.timer.isActive()
    Cycle.collected_on.clear()
    Cycle()
    collector.stop()
    assert Cycle.collected_on == [threading.main_thread().name] and not collector.timer.isActive()
    gc.disable()  # the fixture's collector still runs for the rest of this test


def test_the_application_keeps_one_collector(qapp):
    first = collect_on_gui_thread(qapp)
    assert collect_on_gui_thread(qapp) is first and first.timer.isActive()
    first.stop()
    first.deleteLater()
    gc.disable()
