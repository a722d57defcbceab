"""The standalone build's parts that run without building: the package environment's requirements,
the stripping of the bundle's libraries, and install.sh, which puts the bundle into the user's
application menu."""

import ctypes
import glob
import os
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGING = os.path.join(ROOT, "packaging")
sys.path.insert(0, PACKAGING)
from runtime_requirements import package_requirements  # noqa: E402
from strip_bundle import LoadSegment, load_segments, strip_bundle, stripped_safely  # noqa: E402


def test_the_package_environment_takes_the_cpu_wheel_with_the_same_version_range():
    lines = list(package_requirements(["# TensorFlow\n", "tensorflow>=2.21,<2.22\n", "keras>=3.10,<4\n"]))
    assert lines == [
        "# TensorFlow",
        'tensorflow-cpu>=2.21,<2.22; sys_platform == "linux" and platform_machine == "x86_64"',
        'tensorflow>=2.21,<2.22; sys_platform != "linux" or platform_machine != "x86_64"',
        "keras>=3.10,<4",
    ]


def test_only_the_plain_tensorflow_requirement_is_swapped():
    kept = ["tensorflow-datasets>=4", "tensorflow[and-cuda]>=2.21", "tensorflowjs"]
    assert list(package_requirements(kept)) == kept


def test_the_real_requirements_keep_ray_and_the_test_tools_out():
    script = os.path.join(PACKAGING, "runtime_requirements.py")
    done = subprocess.run(
        [sys.executable, script, os.path.join(ROOT, "requirements.txt")],
        capture_output=True, text=True, check=True,
    )
    names = {line.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
             for line in done.stdout.splitlines() if line and not line.startswith("#")}
    assert {"tensorflow-cpu", "tensorflow", "keras", "pyside6-essentials"} <= names
    assert not names & {"ray[train]", "ray", "pyarrow", "pytest", "onnxruntime"}


def patched_openblas() -> str:
    """numpy's OpenBLAS: auditwheel's patchelf added load segments to it that strip cannot move."""
    import numpy

    site = os.path.dirname(os.path.dirname(numpy.__file__))
    (library,) = glob.glob(os.path.join(site, "numpy.libs", "libscipy_openblas*.so"))
    return library


def test_the_load_segments_of_a_real_library_are_read_as_the_loader_maps_them():
    segments = load_segments(patched_openblas())
    assert len(segments) >= 2
    assert all(segment.aligned() and segment.memory_size >= segment.file_size for segment in segments)
    assert segments[0].offset == 0


def test_a_stripped_library_is_kept_only_when_it_maps_exactly_as_before():
    text = LoadSegment(0x1000, 0x1000, 0x500, 0x500, 5, 0x1000)
    data = LoadSegment(0x2000, 0x3000, 0x100, 0x200, 6, 0x1000)
    assert stripped_safely([text, data], [text, data])
    moved_but_aligned = LoadSegment(0x1000, 0x3000, 0x100, 0x200, 6, 0x1000)
    assert stripped_safely([text, data], [text, moved_but_aligned])
    emptied = LoadSegment(0x2000, 0x3000, 0, 0x200, 6, 0x1000)
    misaligned = LoadSegment(0x2098, 0x3000, 0x100, 0x200, 6, 0x1000)
    assert not stripped_safely([text, data], [text, emptied])
    assert not stripped_safely([text, data], [text, misaligned])
    assert not stripped_safely([text, data], [text])


def test_stripping_a_bundle_never_leaves_a_library_that_maps_differently(tmp_path):
    library = tmp_path / "numpy.libs" / os.path.basename(patched_openblas())
    library.parent.mkdir()
    shutil.copy(patched_openblas(), library)
    (tmp_path / "notes.so.txt").write_text("not a library")
    before, segments = library.read_bytes(), load_segments(str(library))
    if shutil.which("strip") is None:  # the Makefile then builds the bundle unstripped
        done = subprocess.run([sys.executable, os.path.join(PACKAGING, "strip_bundle.py"), str(tmp_path)],
                              capture_output=True, text=True)
        assert done.returncode == 0 and "strip (binutils) is not installed" in done.stderr
        assert library.read_bytes() == before
        return
    saved, kept = strip_bundle(str(tmp_path))
    if kept:  # this strip moves or empties the segments patchelf added (binutils 2.40 does)
        assert kept == [os.path.join("numpy.libs", library.name)] and saved == 0
        assert library.read_bytes() == before
    else:
        assert saved > 0 and stripped_safely(segments, load_segments(str(library)))
        ctypes.CDLL(str(library))


@pytest.fixture
def bundle(tmp_path):
    """A bundle folder as `make package` leaves it, with a stand-in program, in a path with a space."""
    folder = tmp_path / "my apps" / "FitStudio"
    folder.mkdir(parents=True)
    for name in ("install.sh", "FitStudio.desktop", "fitstudio.png"):
        shutil.copy(os.path.join(PACKAGING, name), folder / name)
    program = folder / "FitStudio"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return folder


def install(bundle, data_home, *args):
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_DATA_HOME": str(data_home)}
    return subprocess.run(["sh", str(bundle / "install.sh"), *args], capture_output=True, text=True,
                          env=environment, timeout=60)


@pytest.mark.skipif(sys.platform == "win32", reason="the menu entry is Linux's")
def test_install_adds_a_menu_entry_that_starts_this_bundle_and_uninstall_removes_it(bundle, tmp_path):
    data_home = tmp_path / "share"
    done = install(bundle, data_home)
    assert done.returncode == 0, done.stderr
    entry = (data_home / "applications" / "FitStudio.desktop").read_text()
    assert f'Exec="{bundle / "FitStudio"}"' in entry.splitlines()
    assert "Icon=fitstudio" in entry.splitlines() and "Type=Application" in entry.splitlines()
    assert (data_home / "icons" / "hicolor" / "256x256" / "apps" / "fitstudio.png").read_bytes() == (
        bundle / "fitstudio.png").read_bytes()
    assert install(bundle, data_home).returncode == 0  # again, e.g. after moving the folder: same result
    assert (data_home / "applications" / "FitStudio.desktop").read_text() == entry

    done = install(bundle, data_home, "--uninstall")
    assert done.returncode == 0, done.stderr
    assert not (data_home / "applications" / "FitStudio.desktop").exists()
    assert not (data_home / "icons" / "hicolor" / "256x256" / "apps" / "fitstudio.png").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="the menu entry is Linux's")
def test_install_without_the_program_beside_it_says_so_and_writes_nothing(bundle, tmp_path):
    (bundle / "FitStudio").unlink()
    done = install(bundle, tmp_path / "share")
    assert done.returncode == 1 and "no FitStudio program" in done.stderr
    assert not (tmp_path / "share").exists()
