"""Several hosts on one machine for tests: Linux network namespaces on a private subnet.

Each member is a namespace with one address on a bridge; the bridge lives in a namespace of its
own, and the test's (root) namespace joins it as `.1`, so the test reaches every member directly
and nothing is routed or forwarded. A member's /etc/resolv.conf can point at a DNS server on the
subnet (`ip netns exec` mounts /etc/netns/<name>/resolv.conf over it), as a container's points at
Docker's DNS. Needs root, `ip` (iproute2) and a kernel with network namespaces.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

NETNS_ETC = Path("/etc/netns")


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _used_networks() -> list[ipaddress.IPv4Network]:
    output = subprocess.run(
        ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True
    ).stdout
    return [ipaddress.IPv4Interface(line.split()[3]).network for line in output.splitlines()]


def _free_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    for _ in range(100):
        candidate = ipaddress.IPv4Network(
            f"10.{random.randint(200, 249)}.{random.randint(0, 255)}.0/24"
        )
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise AssertionError("no free 10.x.y.0/24 subnet for the test network")


@dataclass
class Lan:
    """The subnet; `add` makes members. Use through `lan()`, which removes everything after."""

    prefix: str
    subnet: ipaddress.IPv4Network
    members: dict[str, str] = field(default_factory=dict)  # member -> its address

    @property
    def hub(self) -> str:
        return f"{self.prefix}hub"

    @property
    def host_address(self) -> str:
        """The root namespace's address on the subnet."""
        return str(self.subnet[1])

    def namespace(self, member: str) -> str:
        return f"{self.prefix}{member}"

    def add(self, member: str, host: int) -> str:
        """A new namespace `member` at subnet address .host, with loopback up; its address."""
        address = str(self.subnet[host])
        namespace = self.namespace(member)
        _ip("netns", "add", namespace)
        self.members[member] = address
        self._plug(f"{self.prefix}{host}", namespace, address)
        _ip("-n", namespace, "link", "set", "lo", "up")
        return address

    def exec(self, member: str, argv: list[str]) -> list[str]:
        """argv run inside the member's namespace."""
        return ["ip", "netns", "exec", self.namespace(member), *argv]

    def set_resolver(self, member: str, nameserver: str) -> None:
        directory = NETNS_ETC / self.namespace(member)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "resolv.conf").write_text(f"nameserver {nameserver}\noptions attempts:1\n")

    def _plug(self, veth: str, namespace: str | None, address: str) -> None:
        """A veth pair: one end on the hub's bridge, the other in `namespace` (None: root)."""
        outer, inner = f"{veth}b", f"{veth}a"
        _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
        _ip("link", "set", outer, "netns", self.hub)
        _ip("-n", self.hub, "link", "set", outer, "master", "br0", "up")
        where = ["-n", namespace] if namespace else []
        if namespace:
            _ip("link", "set", inner, "netns", namespace)
        _ip(*where, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inner)
        _ip(*where, "link", "set", inner, "up")

    def _start(self) -> None:
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        self._plug(f"{self.prefix}h", None, self.host_address)

    def _remove(self) -> None:
        for member in self.members:
            namespace = self.namespace(member)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
            shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)
        # The root namespace's veth goes with its peer, which is in the hub.
        subprocess.run(["ip", "netns", "del", self.hub], capture_output=True, check=False)


def require_netns() -> None:
    """Fail (never skip) when this machine cannot make network namespaces."""
    if os.geteuid() != 0:
        raise AssertionError("network namespaces need root: run the tests as root (CI does)")
    if shutil.which("ip") is None:
        raise AssertionError("ip is not installed (Debian package iproute2, see .ci/run)")


@contextmanager
def lan() -> Iterator[Lan]:
    require_netns()
    network = Lan(f"t{os.getpid() % 100000}", _free_subnet())
    try:
        network._start()
        yield network
    finally:
        network._remove()
