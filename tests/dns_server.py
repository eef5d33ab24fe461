"""A real DNS server for tests: Debian's dnsmasq answering A records from a hosts file that the
test rewrites (as Docker's DNS answers a service name with one address per replica)."""

from __future__ import annotations

import os
import shutil
import signal

from tests.servers import Processes, wait_for


class Dnsmasq:
    """dnsmasq serving `names` (name -> addresses) on address:port; `argv_prefix` runs it
    elsewhere, for example inside a network namespace."""

    def __init__(self, processes: Processes, address: str, port: int = 53) -> None:
        binary = shutil.which("dnsmasq", path=os.environ.get("PATH", "") + ":/usr/sbin")
        if binary is None:
            raise AssertionError("dnsmasq is not installed (Debian package dnsmasq-base)")
        self.binary, self.processes = binary, processes
        self.address, self.port = address, port
        self.hosts = processes.logs / f"dns-{address}-{port}.hosts"
        self.name = f"dnsmasq-{address}-{port}"
        self.loads = 0

    def start(self, names: dict[str, list[str]], argv_prefix: list[str] | None = None) -> None:
        self._write(names)
        argv = [self.binary, "--keep-in-foreground", "--log-facility=-", "--pid-file="]
        argv += [f"--port={self.port}", f"--listen-address={self.address}", "--bind-interfaces"]
        # Only the hosts file: no upstream servers, no /etc/hosts, answers never cached by
        # clients (TTL 0), so a rewrite is seen on the next lookup.
        argv += ["--no-resolv", "--no-hosts", f"--addn-hosts={self.hosts}", "--local-ttl=0"]
        argv += ["--user=root"]
        self.processes.start(self.name, [*(argv_prefix or []), *argv])
        self._wait_loaded()

    def set(self, names: dict[str, list[str]]) -> None:
        """Answer with these addresses from now on (dnsmasq rereads its hosts on SIGHUP)."""
        self._write(names)
        os.kill(self.processes.running[self.name].pid, signal.SIGHUP)
        self._wait_loaded()

    def _write(self, names: dict[str, list[str]]) -> None:
        lines = [f"{address} {name}" for name, addresses in names.items() for address in addresses]
        self.hosts.write_text("\n".join(lines) + "\n")

    def _wait_loaded(self) -> None:
        self.loads += 1

        def loaded() -> bool:
            self.processes.check_alive()
            return self.processes.log(self.name).count(f"read {self.hosts}") >= self.loads

        wait_for(loaded, 15, f"dnsmasq reading {self.hosts}")
