"""Who listens on a TCP port, and which process that is, read from /proc (Linux)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
# Processes that hold a container's published port on the host (docker's userland proxy,
# rootless docker and podman): a port they hold is the stack's own.
CONTAINER_PROXIES = frozenset(
    {"docker-proxy", "rootlesskit", "rootlessport", "slirp4netns", "pasta", "vpnkit"}
)


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    inode: int


@dataclass(frozen=True)
class Owner:
    name: str
    pid: int

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid})"


def _decode_address(hex_address: str) -> tuple[str, int]:
    """/proc/net/tcp{,6} `local_address`: the IP in 32-bit host-order words, then the port."""
    hex_ip, hex_port = hex_address.split(":")
    raw = bytes.fromhex(hex_ip)
    ip = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(ip)), int(hex_port, 16)


def read_listeners(proc: Path = PROC) -> list[Listener] | None:
    """Listening TCP sockets of this network namespace; None when /proc/net/tcp is unreadable."""
    if not (proc / "net" / "tcp").is_file():  # not Linux, or /proc not mounted
        return None
    found = []
    try:
        for table in ("tcp", "tcp6"):
            path = proc / "net" / table
            lines = path.read_text().splitlines()[1:] if path.exists() else []
            for fields in (line.split() for line in lines):
                if fields[3] == "0A":  # TCP_LISTEN
                    found.append(Listener(*_decode_address(fields[1]), int(fields[9])))
    except OSError:
        return None
    return found


def _socket_inodes(pid_dir: Path) -> Iterable[int]:
    for fd in (pid_dir / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            yield int(target[8:-1])


def _program(pid_dir: Path) -> str:
    """The program's name: argv[0] (comm is cut at 15 characters), with the module or script
    for an interpreter (`python -m uvicorn`)."""
    argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
    name = os.path.basename(argv[0].decode(errors="replace"))
    if not name:  # a kernel thread or a zombie
        return (pid_dir / "comm").read_text().strip()
    if name.startswith("python") and len(argv) > 1:
        name = " ".join([name, *(arg.decode(errors="replace") for arg in argv[1:3] if arg)])
    return name


def socket_owners(inodes: set[int], proc: Path = PROC) -> tuple[dict[int, Owner], bool]:
    """The processes holding these sockets, and whether some processes could not be read."""
    owners: dict[int, Owner] = {}
    hidden = False
    for pid_dir in (p for p in proc.iterdir() if p.name.isdigit()):
        try:
            for inode in set(_socket_inodes(pid_dir)) & inodes:
                owners[inode] = Owner(_program(pid_dir), int(pid_dir.name))
        except PermissionError:
            hidden = True
        except OSError:  # the process exited
            continue
    return owners, hidden


@dataclass
class PortTable:
    """Who listens where, read once per run."""

    listeners: list[Listener] | None
    owners: dict[int, Owner] = field(default_factory=dict)
    hidden: bool = False

    @classmethod
    def read(cls, proc: Path = PROC) -> PortTable:
        listeners = read_listeners(proc)
        if not listeners:
            return cls(listeners)
        return cls(listeners, *socket_owners({item.inode for item in listeners}, proc))

    def holders(self, port: int) -> list[Listener] | None:
        if self.listeners is None:
            return None
        return [item for item in self.listeners if item.port == port]

    def describe(self, held: list[Listener]) -> str:
        unknown = "owner hidden (run as root)" if self.hidden else "owner unknown"
        owners = sorted({str(self.owners.get(item.inode, unknown)) for item in held})
        addresses = sorted({item.address for item in held})
        return f"{', '.join(owners)} on {', '.join(addresses)}"

    def host_process(self, held: list[Listener]) -> bool:
        """Held by a process of this host, not by a container runtime's port proxy."""
        owners = [self.owners.get(item.inode) for item in held]
        known = [owner for owner in owners if owner is not None]
        return bool(known) and all(owner.name not in CONTAINER_PROXIES for owner in known)
