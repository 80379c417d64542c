"""Exceptions raised to the caller; the only module that defines any.

Each is also importable from the module that raises it. Two stay where they
are on purpose: `cli.main.CliError` carries the CLI's exit codes, and private
exceptions (`_Unreadable`, `_Unexplainable`) steer control flow inside one
module and never reach a caller.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class ViewerUnavailable(RuntimeError):
    """Phoenix or rotel is not installed or cannot run here."""


class ViewerStartError(RuntimeError):
    """Phoenix or rotel was found but did not become ready before the deadline."""


class PolicyError(ValueError):
    """A policy the contrib collector would refuse to load; the message names it and the key."""


class UnsupportedPolicy(PolicyError):
    """A valid policy (or option) that this evaluator does not model."""


class RedisUnavailable(RuntimeError):
    """No private Redis here: no binary, or it would not start in time."""
