"""Strips the symbol tables off the standalone bundle's shared libraries, keeping only the safe results.

    python packaging/strip_bundle.py dist/FitStudio

Most wheels ship their libraries with symbol tables that nothing reads at run time (libpython
alone: 17 MB of its 23). `strip --strip-unneeded` removes them. It is not safe on every file:
auditwheel's patchelf appends load segments that strip cannot move, and the stripped file then
fails to load ("ELF load command address/offset not page-aligned"; numpy's and scipy's OpenBLAS) or
loses their contents. So each library is stripped into a copy, and the copy replaces the original
only when every segment the loader maps is unchanged (address, sizes, flags) and stays aligned. A
library where that fails keeps its symbols and is listed.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
PAGE_SIZE = 4096


@dataclass(frozen=True)
class LoadSegment:
    offset: int
    address: int
    file_size: int
    memory_size: int
    flags: int
    alignment: int

    def aligned(self) -> bool:
        """The loader's own test: a mappable segment's address and offset agree modulo the page."""
        return (self.address - self.offset) % PAGE_SIZE == 0

    def mapped_the_same_as(self, other: LoadSegment) -> bool:
        return (self.address, self.file_size, self.memory_size, self.flags) == (
            other.address, other.file_size, other.memory_size, other.flags
        )


def is_elf(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == ELF_MAGIC


def load_segments(path: str) -> list[LoadSegment]:
    """The PT_LOAD program headers of a 64-bit little-endian ELF file (every Linux x86_64 library)."""
    with open(path, "rb") as file:
        header = file.read(64)
        if header[:4] != ELF_MAGIC or header[4] != 2 or header[5] != 1:
            raise ValueError(f"{path} is not a 64-bit little-endian ELF file")
        table_offset, entry_size, entries = (
            struct.unpack_from("<Q", header, 32)[0], *struct.unpack_from("<HH", header, 54)
        )
        file.seek(table_offset)
        table = file.read(entry_size * entries)
    segments = []
    for index in range(entries):
        kind, flags, offset, address, _, file_size, memory_size, alignment = struct.unpack_from(
            "<IIQQQQQQ", table, index * entry_size
        )
        if kind == PT_LOAD:
            segments.append(LoadSegment(offset, address, file_size, memory_size, flags, alignment))
    return segments


def stripped_safely(before: list[LoadSegment], after: list[LoadSegment]) -> bool:
    """Whether the stripped file maps exactly what the original did, at offsets the loader accepts."""
    return len(before) == len(after) and all(
        old.mapped_the_same_as(new) and new.aligned() for old, new in zip(before, after, strict=False)
    )


def libraries(bundle: str) -> Iterator[str]:
    for folder, _, names in os.walk(bundle):
        for name in names:
            path = os.path.join(folder, name)
            if ".so" in name and not os.path.islink(path) and os.path.isfile(path) and is_elf(path):
                yield path


def strip_library(path: str, scratch: str) -> int | None:
    """Bytes saved by stripping `path` in place; None where the stripped copy was not safe."""
    copy = os.path.join(scratch, "stripped")
    shutil.copy2(path, copy)
    result = subprocess.run(["strip", "--strip-unneeded", copy], capture_output=True)
    if result.returncode != 0 or not stripped_safely(load_segments(path), load_segments(copy)):
        return None
    saved = os.path.getsize(path) - os.path.getsize(copy)
    if saved > 0:
        shutil.copymode(path, copy)
        os.replace(copy, path)
    return saved


def strip_bundle(bundle: str) -> tuple[int, list[str]]:
    """Bytes saved in all, and the libraries left as they were because stripping was not safe."""
    saved, kept = 0, []
    with tempfile.TemporaryDirectory(prefix="fitstudio-strip-") as scratch:
        for path in libraries(bundle):
            bytes_saved = strip_library(path, scratch)
            if bytes_saved is None:
                kept.append(os.path.relpath(path, bundle))
            else:
                saved += bytes_saved
    return saved, kept


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python packaging/strip_bundle.py BUNDLE_FOLDER", file=sys.stderr)
        return 2
    if shutil.which("strip") is None:
        print("strip (binutils) is not installed: the bundle keeps its symbol tables.", file=sys.stderr)
        return 0
    saved, kept = strip_bundle(argv[0])
    kept_bytes = sum(os.path.getsize(os.path.join(argv[0], path)) for path in kept)
    print(f"Stripped symbol tables: {saved / 1e6:.1f} MB saved. {len(kept)} libraries "
          f"({kept_bytes / 1e6:.1f} MB, mostly patched by auditwheel) were not safe to strip: left as built.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
