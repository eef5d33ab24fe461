"""Debian's nginx running the project's own nginx.conf, conf.d and dev.d, with only addresses and
paths rewritten: listen ports, the DNS resolver (Docker's 127.0.0.11 in compose) and the app's
port. The app's name, `fastapi`, stays, so requests go wherever the resolver sends that name."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.servers import Processes, wait_for

ROOT = Path(__file__).resolve().parents[1]
NGINX_DIR = ROOT / "nginx"
SITE_DIRS = ("conf.d", "dev.d")


@dataclass(frozen=True)
class NginxSite:
    ports: dict[int, int]  # port in the project's config -> where it listens here
    host: str

    def url(self, configured_port: int) -> str:
        return f"http://{self.host}:{self.ports[configured_port]}"


def _rewrite(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is gone from the nginx config: update tests/nginx_site.py"
    return text.replace(old, new)


def write_config(
    workdir: Path, *, host: str, ports: dict[int, int], resolver: str, app_port: int
) -> Path:
    main = (NGINX_DIR / "nginx.conf").read_text()
    main = _rewrite(main, "/tmp/", f"{workdir}/")
    for directory in SITE_DIRS:
        main = _rewrite(main, f"/etc/nginx/{directory}/", f"{workdir}/{directory}/")
        (workdir / directory).mkdir()
        for path in (NGINX_DIR / directory).glob("*.conf"):
            site = _rewrite(path.read_text(), "resolver 127.0.0.11 ", f"resolver {resolver} ")
            site = _rewrite(site, "http://fastapi:8000", f"http://fastapi:{app_port}")
            site = re.sub(r"listen (\d+)", lambda m: f"listen {host}:{ports[int(m[1])]}", site)
            (workdir / directory / path.name).write_text(site)
    conf = workdir / "nginx.conf"
    conf.write_text(main)
    return conf


def listen_ports() -> list[int]:
    """Every port the project's nginx config listens on."""
    return sorted(
        int(port)
        for directory in SITE_DIRS
        for path in (NGINX_DIR / directory).glob("*.conf")
        for port in re.findall(r"^\s*listen (\d+)", path.read_text(), re.MULTILINE)
    )


def start_nginx(
    processes: Processes,
    *,
    host: str,
    ports: dict[int, int],
    resolver: str,
    app_port: int,
    argv_prefix: list[str] | None = None,
) -> NginxSite:
    binary = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if binary is None:
        raise AssertionError("nginx is not installed (Debian package nginx, see .ci/run)")
    workdir = processes.logs / f"nginx-{host}"
    workdir.mkdir()
    conf = write_config(workdir, host=host, ports=ports, resolver=resolver, app_port=app_port)
    # Root here, so workers would switch to nobody, who cannot write the temp paths.
    argv = [binary, "-e", "stderr", "-p", str(workdir), "-c", str(conf)]
    argv += ["-g", "daemon off; user root;"]
    processes.start(f"nginx-{host}", [*(argv_prefix or []), *argv])
    site = NginxSite(ports, host)
    internal = max(ports)  # wait on any port: nginx binds all of them before it serves

    def listening() -> bool:
        processes.check_alive()
        import socket

        socket.create_connection((host, ports[internal]), timeout=1).close()
        return True

    wait_for(listening, 15, "nginx listening")
    return site
