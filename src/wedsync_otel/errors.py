"""Exceptions raised to the caller; the only module that defines any."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
