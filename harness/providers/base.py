"""The provider protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Provider(Protocol):
    """Gives a Redis URL for the run; start/stop bracket the run."""

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> dict[str, str]:
        """Version and configuration, for the run's verdict.json."""
        ...


@runtime_checkable
class RedisFaults(Protocol):
    """A provider that can hurt its server (a local process, a container)."""

    def kill(self) -> None: ...

    def restart(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...
