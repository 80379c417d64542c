"""Shared fixtures: a fake clock and real SDK pipelines ending in in-memory exporters."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from helpers import TUESDAY, FakeClock, Pipeline
from wedsync_otel import WeddingConfig, _safety


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(TUESDAY)


@pytest.fixture
def make_pipeline(clock: FakeClock) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(config: WeddingConfig | None = None) -> Pipeline:
        pipeline = Pipeline(config or WeddingConfig.default(), clock)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.provider.shutdown()


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline()


@pytest.fixture(autouse=True)
def _fresh_internal_error_log() -> None:
    """Each test sees internal errors logged afresh: "once per place" is per process."""
    _safety._reported.clear()
