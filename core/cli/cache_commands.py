"""`cache --info` and `cache --clear`: the disk cache of decoded images that runs share."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from core.cli.common import EXIT_OK
from core.config import DEFAULT_CACHE_DISK_MB
from core.data.disk_cache import DiskCache


def add_cache_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="show or empty the disk cache of decoded images",
        description="Decoded images are kept on disk between runs, so the next run on the same folder "
        "starts without decoding. FITSTUDIO_CACHE_DIR moves the cache folder.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--info", action="store_true", help="print the cache folder, its size and datasets")
    action.add_argument("--clear", action="store_true", help="delete every cached image not in use")
    parser.set_defaults(handler=run_cache)


def run_cache(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up when called: a redirect, a test's capture
    cache = DiskCache()
    return print_info(cache, out) if args.info else clear(cache, out)


def print_info(cache: DiskCache, out: TextIO) -> int:
    stores = cache.stores()
    total = sum(store.size_bytes for store in stores)
    entries = sum(store.entries for store in stores)
    out.write(f"Disk cache: {cache.folder}\n")
    out.write(f"{_megabytes(total)}, {entries} images in {len(stores)} datasets (runs keep it within "
              f"--cache-disk-mb, by default {DEFAULT_CACHE_DISK_MB} MB)\n")
    for store in stores:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(store.last_used)) if store.last_used else "?"
        busy = ", in use" if store.in_use else ""
        kind = "images"
        if store.layout is not None:  # a backbone's features (core.data.feature_cache)
            variant = store.layout.variant
            kind = f"{variant.get('backbone', '?')} features ({variant.get('view', '?')}) of images"
        out.write(f"  {store.root}  {store.image_size} px {store.resize_mode}: {store.entries} {kind}, "
                  f"{_megabytes(store.size_bytes)}, last used {used}{busy}\n")
    return EXIT_OK


def clear(cache: DiskCache, out: TextIO) -> int:
    cleared = cache.clear()
    freed = _megabytes(cleared.freed_bytes)
    out.write(f"Cleared {cache.folder}: {cleared.removed} datasets, {freed} freed\n")
    for root in cleared.in_use:
        out.write(f"  kept {root}: a FitStudio process is using it (clear again once it has finished)\n")
    return EXIT_OK


def _megabytes(size: int) -> str:
    return f"{size / 1024**2:.1f} MB"
