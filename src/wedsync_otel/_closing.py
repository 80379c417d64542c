"""The one ``with`` protocol of everything here that is finished by ``close()``."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class ClosesOnExit(abc.ABC):
    """``with thing:`` yields the thing itself and closes it however the block ends.

    Exceptions from the block are never suppressed. A class whose ``__enter__`` starts
    something, or whose exit does more than close, writes its own pair instead.
    """

    __slots__ = ()

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the object holds; the ``with`` block's end calls it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
