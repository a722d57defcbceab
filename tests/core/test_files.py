"""files.write_atomic: a temporary name of this writer's own, so writers of one file never clash."""

import os

from core import files


def test_two_writers_of_one_file_at_once_never_touch_each_others_temporary_file(tmp_path):
    target = str(tmp_path / "weights.h5")
    names = []

    def outer(partial):
        names.append(partial)
        with open(partial, "w") as handle:
            handle.write("outer")
        # Another writer (a second Ray worker fetching the same cache file) finishes meanwhile.
        files.write_atomic(target, inner)
        with open(partial) as handle:
            assert handle.read() == "outer"  # still there, still ours

    def inner(partial):
        names.append(partial)
        with open(partial, "w") as handle:
            handle.write("inner")

    files.write_atomic(target, outer)
    assert len(set(names)) == 2 and all(name.endswith(".h5") for name in names)
    assert all(f".partial-{os.getpid()}-" in name for name in names)
    with open(target) as handle:
        assert handle.read() == "outer" and os.listdir(tmp_path) == ["weights.h5"]
