"""Which TCP sockets processes listen on, read from /proc (Linux; no psutil needed).

`listeners(pids)` gives (pid, process name, address, port) for every listening TCP socket the
processes hold; `descendants(pid)` the processes started below `pid` (a Ray cluster started by a
test: its GCS, raylet, workers). `is_loopback(address)` tells 127.0.0.0/8 and ::1 from the rest.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

LISTEN = "0A"  # the TCP state column of /proc/net/tcp


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def listeners(pids: list[int]) -> list[tuple[int, str, str, int]]:
    owners = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    found = []
    for pid in {*pids} & {*owners.values()}:
        for table in ("tcp", "tcp6"):
            for address, port, inode in _listening(pid, table):
                if owners.get(inode) == pid:
                    found.append((pid, process_name(pid), address, port))
    return sorted(set(found))


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return "?"


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _listening(pid: int, table: str) -> list[tuple[str, int, str]]:
    try:
        with open(f"/proc/{pid}/net/{table}") as handle:
            rows = [line.split() for line in handle.readlines()[1:]]
    except OSError:
        return []
    found = []
    for row in rows:
        if row[3] == LISTEN:
            hex_address, hex_port = row[1].split(":")
            found.append((_address(hex_address), int(hex_port, 16), row[9]))
    return found


def _address(hex_address: str) -> str:
    """/proc writes each 32-bit word of the address in the host's byte order."""
    raw = bytes.fromhex(hex_address)
    words = struct.unpack(f"={len(raw) // 4}I", raw)
    packed = struct.pack(f"!{len(words)}I", *words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed)
