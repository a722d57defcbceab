"""Prints the standalone build's runtime requirements: requirements.txt, with TensorFlow's CPU wheel
in place of `tensorflow` where PyPI has one (Linux x86_64).

    python packaging/runtime_requirements.py requirements.txt > .venv-package/requirements-runtime.txt

Why: on Linux the `tensorflow` wheel carries CUDA kernels (hundreds of MB) that the bundle cannot use,
since it does not carry the CUDA libraries they need; `tensorflow-cpu` is the same TensorFlow without
them and provides the same `tensorflow` module. Elsewhere (macOS, Windows, Linux on ARM) the
`tensorflow` wheel is already CPU-only, so it stays. The version range is taken from requirements.txt,
so the bundle and `make run` always get the same TensorFlow. Standard library only: it runs before
anything is installed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator

# `tensorflow` followed by its version range, not tensorflow-something else or an extra.
TENSORFLOW = re.compile(r"^tensorflow(?P<range>\s*[<>=!~][^;#]*)?\s*(#.*)?$")
CPU_WHEEL_PLATFORM = 'sys_platform == "linux" and platform_machine == "x86_64"'
OTHER_PLATFORMS = 'sys_platform != "linux" or platform_machine != "x86_64"'


def package_requirements(lines: Iterable[str]) -> Iterator[str]:
    """The lines of a requirements file, with the `tensorflow` line split in two by platform."""
    for line in lines:
        match = TENSORFLOW.match(line.strip())
        if not match:
            yield line.rstrip("\n")
            continue
        version_range = (match.group("range") or "").strip()
        yield f"tensorflow-cpu{version_range}; {CPU_WHEEL_PLATFORM}"
        yield f"tensorflow{version_range}; {OTHER_PLATFORMS}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: runtime_requirements.py REQUIREMENTS_FILE\n")
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        lines = list(package_requirements(handle))
    if not any(line.startswith("tensorflow-cpu") for line in lines):
        sys.stderr.write(f"{argv[1]} has no plain `tensorflow` requirement to replace.\n")
        return 1
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
