"""The wedding rules compiled from a `WeddingConfig`.

Pure: no OpenTelemetry import. Everything that depends only on the
configuration is decided in the constructor: the matcher, the time zone, and
a `Judgement` (threshold and the static span attributes) for every endpoint,
band, Saturday and season combination. Per request, only the duration is
compared.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from wedsync_otel import attributes as attr
from wedsync_otel.calendar import (
    ApdexClass,
    Band,
    DayFacts,
    PlatformCalendar,
    apdex_class,
    band_for_days,
    days_until,
)
from wedsync_otel.catalogue import OTHER, Catalogue, EndpointSpec
from wedsync_otel.config import WeddingConfig


def threshold_ms(
    base_ms: float,
    band: Band,
    config: WeddingConfig,
    *,
    critical: bool,
    saturday: bool,
) -> float:
    """The threshold rule: ``base * multiplier(band)``, tighter for wedding-day traffic.

    Wedding-day traffic is the ``wedding_day`` band, or (with Saturday mode on)
    a critical endpoint on a Saturday; it takes the ``wedding_day`` multiplier,
    and a critical endpoint's wedding-day threshold is capped.
    """
    wedding_day_traffic = band is Band.WEDDING_DAY or (
        config.saturday_mode and critical and saturday
    )
    if not wedding_day_traffic:
        return base_ms * config.bands.for_band(band)
    threshold = base_ms * config.bands.wedding_day
    return min(threshold, config.critical_wedding_day_cap_ms) if critical else threshold


@dataclass(frozen=True, slots=True, eq=False)
class Judgement:
    """What the rules say about every request to one endpoint, in one band, on one kind of day.

    Compared and hashed by identity: the rules make each one once, and per-span
    code keys caches by it (field-wise hashing would cost a Python call per span).
    """

    endpoint: str
    critical: bool
    band: Band
    proximity: str
    """``band.value``, read once: enum ``.value`` costs a property call per span."""
    saturday: bool
    season: bool
    threshold_ms: float
    span_attributes: Mapping[str, str | bool | float]
    """The static ``wedding.*`` attributes, ready to merge into a span."""

    def apdex(self, duration_ms: float, *, failed: bool) -> ApdexClass:
        """Apdex class of one request against this judgement's threshold (`apdex_class`)."""
        return apdex_class(duration_ms, self.threshold_ms, failed=failed)

    def breached(self, duration_ms: float) -> bool:
        """Whether one request took longer than this judgement's threshold (NaN: not)."""
        return duration_ms > self.threshold_ms


class WeddingRules:
    """Judges requests against one configuration."""

    def __init__(self, config: WeddingConfig) -> None:
        self.config = config
        self.catalogue = Catalogue(config.endpoints)
        self.calendar = PlatformCalendar(zoneinfo.ZoneInfo(config.timezone), config.season_months)
        self.other = EndpointSpec(name=OTHER, patterns=(), threshold_ms=config.default_threshold_ms)
        self._judgements: dict[str, dict[tuple[Band, bool, bool], Judgement]] = {
            spec.name: {
                (band, saturday, season): _judgement(spec, band, saturday, season, config)
                for band in Band
                for saturday in (False, True)
                for season in (False, True)
            }
            for spec in (*config.endpoints, self.other)
        }

    def endpoint(self, path: str | None) -> EndpointSpec:
        """The catalogue entry for a route or path; the ``other`` entry when none claims it."""
        if path is None:
            return self.other
        return self.catalogue.match(path) or self.other

    def judge(self, spec: EndpointSpec, band: Band, day: DayFacts) -> Judgement:
        """The judgement for one endpoint and band on one day."""
        return self._judgements[spec.name][(band, day.saturday, day.season)]

    def judgements(self, spec: EndpointSpec) -> Mapping[tuple[Band, bool, bool], Judgement]:
        """Every judgement of one endpoint, keyed by (band, saturday, season)."""
        return self._judgements[spec.name]

    def proximity(self, wedding_date: dt.date | None, day: DayFacts) -> tuple[Band, int | None]:
        """Band and whole days until the wedding, seen from a request on ``day``."""
        if wedding_date is None:
            return Band.UNKNOWN, None
        days = days_until(wedding_date, day.date)
        return band_for_days(days), days


def _judgement(
    spec: EndpointSpec, band: Band, saturday: bool, season: bool, config: WeddingConfig
) -> Judgement:
    threshold = threshold_ms(
        spec.threshold_ms, band, config, critical=spec.critical, saturday=saturday
    )
    return Judgement(
        endpoint=spec.name,
        critical=spec.critical,
        band=band,
        proximity=band.value,
        saturday=saturday,
        season=season,
        threshold_ms=threshold,
        span_attributes={
            attr.WEDDING_ENDPOINT: spec.name,
            attr.WEDDING_CRITICAL: spec.critical,
            attr.WEDDING_PROXIMITY: band.value,
            attr.WEDDING_SATURDAY: saturday,
            attr.WEDDING_SEASON: season,
            attr.WEDDING_THRESHOLD_MS: threshold,
        },
    )


class Verdict(NamedTuple):
    """One judged request: what listeners (the metrics recorder) receive."""

    judgement: Judgement
    days_until: int | None
    duration_ms: float
    apdex: ApdexClass
    failed: bool
    status_code: int | None
    cache_hits: int = 0
    cache_misses: int = 0
    db_ms: float = 0.0
    """The request's own database time (its roll-up), for the DB time metrics."""

    def with_rollup(self, cache_hits: int, cache_misses: int, db_ms: float) -> Verdict:
        """The same verdict with the request's rolled-up cache and database work."""
        return self._replace(cache_hits=cache_hits, cache_misses=cache_misses, db_ms=db_ms)
