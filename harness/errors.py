"""Every error the harness raises, one tree under HarnessError.

    HarnessError
    ├── SetupError          something the run needs is missing (redis-server, Docker, root)
    ├── ScenarioError       a scenario file or a scenario option is invalid
    ├── HistoryError        a journal or run folder cannot be read (corrupt, older format)
    └── AdapterError        a queue adapter cannot be loaded or misbehaves

Every message says what was wrong and what to do; the CLI prints it on one line
and exits with 2.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every harness error."""


class SetupError(HarnessError):
    """Something the run needs is missing or cannot be started."""


class ScenarioError(HarnessError, ValueError):
    """A scenario file or option is invalid."""


class HistoryError(HarnessError):
    """A journal or run folder cannot be read."""


class AdapterError(HarnessError):
    """A queue adapter cannot be loaded or broke its protocol."""
