"""Spans into bounded window totals, one at a time, for ``wedsync-otel report``.

A report reads files of any size, so nothing here grows with the number of
spans. Requests are pre-aggregated per fine slot (10 s, endpoint, band, error)
into the project's exponential histograms, and every `PENDING_SLOTS` slots
the totals go into a `WindowStore`, whose rings keep the last five minutes
and the last hour of slots. What the rings do not hold (the breach flag, and
the thresholds and critical flags the spans carried) is kept per fine slot
in a ring of the same reach, `FACT_SLOTS`. Endpoints are capped at
`MAX_ENDPOINTS` and the distinct thresholds per slot and series at
`MAX_THRESHOLDS`; what is left out is counted.

Out-of-order files need no care: a ring keeps the newest slots by index, not
by arrival, so a slot older than its reach is dropped whenever it comes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from opentelemetry.trace import SpanKind, StatusCode

from wedsync_otel import attributes as attr
from wedsync_otel.calendar import ApdexClass, Band, apdex_class
from wedsync_otel.catalogue import EndpointSpec
from wedsync_otel.config import WeddingConfig
from wedsync_otel.exporters.records import SpanRecord
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.metrics.performance import PerformanceModel
from wedsync_otel.metrics.recording import MAX_DURATION_MS
from wedsync_otel.metrics.windows import WINDOWS, WindowStore

MAX_ENDPOINTS: Final = 200
"""Distinct ``wedding.endpoint`` names a report keeps; requests of further names are counted."""
PENDING_SLOTS: Final = 32
"""Fine slots pre-aggregated before their totals go into the window store."""
MAX_THRESHOLDS: Final = 32
"""Distinct ``wedding.threshold_ms`` values kept per fine slot, endpoint and band."""

_NS_PER_S: Final = 1_000_000_000
_STATUS_KEYS: Final = ("http.response.status_code", "http.status_code")
_BANDS: Final = frozenset(band.value for band in Band)
_APDEX: Final = frozenset(apdex.value for apdex in ApdexClass)
_UNKNOWN: Final = Band.UNKNOWN.value
_WEDDING_DAY: Final = Band.WEDDING_DAY.value
_FRUSTRATED: Final = ApdexClass.FRUSTRATED.value
_SERVER: Final = SpanKind.SERVER
_ERROR: Final = StatusCode.ERROR


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _status(value: object) -> float | None:
    """An HTTP status; old instrumentations may write it as a string."""
    if isinstance(value, str) and value.isdigit() and len(value) == 3:
        return float(value)
    return _number(value)


def _failed(span: SpanRecord) -> bool:
    """A 5xx, or a failed span without a status code: what the recorder counts as ``5xx``."""
    for key in _STATUS_KEYS:
        status = _status(span.attributes.get(key))
        if status is not None:
            return 500 <= status <= 599
    return span.status_code is _ERROR


@dataclass
class _Slot:
    """Requests of one endpoint, band and error status that ended in one fine slot."""

    durations: ExponentialBuckets = field(default_factory=ExponentialBuckets)
    apdex: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    db_ms: float = 0.0


@dataclass
class _Facts:
    """What the spans of one endpoint and band said about their judgement, in one fine slot."""

    breaches: int = 0
    critical: int = 0
    """Spans marked ``wedding.critical``."""
    thresholds: dict[tuple[float, bool], int] = field(default_factory=dict)
    """(threshold, wedding-day traffic) -> spans."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointJudgement:
    """How an endpoint's spans were judged in the hour, read back from their attributes."""

    name: str
    critical: bool
    """Some span of the endpoint carried ``wedding.critical = true``."""
    threshold_ms: float
    """The threshold its spans carried most often: what health compares p95 against."""
    band_thresholds_ms: Mapping[str, float]
    """Band -> the threshold that band's spans carried most often."""
    wedding_day_threshold_ms: float
    """The tightest threshold of its wedding-day traffic; without any, of all its spans."""
    wedding_day_traffic: int
    """Spans of wedding-day traffic: the ``wedding_day`` band, or critical on a Saturday."""
    from_spans: bool = True
    """False when no span carried a threshold: the default threshold stands in."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Tally:
    """What a pass over the spans counted, beside the window totals."""

    spans: int
    requests: int
    """Enriched spans with a usable duration: what the figures count."""
    unenriched: int
    """Request spans (SERVER, or without a parent) with no ``wedding.endpoint``."""
    unusable: int
    """Enriched spans whose ``wedding.duration_ms`` is missing, negative or absurd."""
    overflow: int
    """Requests of endpoints beyond `MAX_ENDPOINTS`."""
    without_threshold: int
    """Requests with no usable ``wedding.threshold_ms`` (the span limits may drop it)."""
    thresholds_dropped: int
    """Requests whose threshold was not kept: their slot held `MAX_THRESHOLDS` values already."""
    newest_ns: int


class SpanAggregator:
    """Takes spans one at a time; holds bounded totals whatever their number."""

    def __init__(self) -> None:
        self.store = WindowStore()
        self._slot_ns = math.gcd(self.store.fine.slot_s, self.store.coarse.slot_s) * _NS_PER_S
        self._fact_slots = WINDOWS["1h"] * _NS_PER_S // self._slot_ns + 8
        self._pending: dict[int, dict[tuple[str, str, bool], _Slot]] = {}
        self._facts: dict[int, dict[tuple[str, str], _Facts]] = {}
        self._endpoints: set[str] = set()
        self._spans = self._requests = self._unenriched = self._unusable = self._overflow = 0
        self._thresholds_dropped = self._without_threshold = 0
        self._newest_ns = 0

    def add(self, span: SpanRecord) -> None:
        """Count one span: a request into its slot, anything else into the tally."""
        self._spans += 1
        attributes = span.attributes
        endpoint = attributes.get(attr.WEDDING_ENDPOINT)
        if not isinstance(endpoint, str):
            if span.kind is _SERVER or span.parent_span_id is None:
                self._unenriched += 1
            return
        duration_ms = _number(attributes.get(attr.WEDDING_DURATION_MS))
        if duration_ms is None or not 0.0 <= duration_ms <= MAX_DURATION_MS:
            self._unusable += 1  # the recorder rejects these too
            return
        if endpoint not in self._endpoints:
            if len(self._endpoints) >= MAX_ENDPOINTS:
                self._overflow += 1
                return
            self._endpoints.add(endpoint)
        self._requests += 1
        self._newest_ns = max(self._newest_ns, span.end_ns)
        self._record(span, endpoint, duration_ms)

    def _record(self, span: SpanRecord, endpoint: str, duration_ms: float) -> None:
        attributes = span.attributes
        proximity = attributes.get(attr.WEDDING_PROXIMITY)
        band = proximity if isinstance(proximity, str) and proximity in _BANDS else _UNKNOWN
        failed = _failed(span)
        threshold = _number(attributes.get(attr.WEDDING_THRESHOLD_MS))
        written = attributes.get(attr.WEDDING_APDEX)
        if isinstance(written, str) and written in _APDEX:
            apdex = written
        elif threshold is None:
            apdex = _FRUSTRATED
        else:  # dropped by the span limits: judge it as the processor did
            apdex = apdex_class(duration_ms, threshold, failed=failed).value
        index = span.end_ns // self._slot_ns
        slot = self._slot(index, endpoint, band, failed)
        slot.durations.record(duration_ms)
        slot.apdex[apdex] = slot.apdex.get(apdex, 0) + 1
        slot.cache_hits += int(_number(attributes.get(attr.ROLLUP_CACHE_HITS)) or 0)
        slot.cache_misses += int(_number(attributes.get(attr.ROLLUP_CACHE_MISSES)) or 0)
        slot.db_ms += _number(attributes.get(attr.ROLLUP_DB_DURATION_MS)) or 0.0
        facts = self._fact(index, endpoint, band)
        if attributes.get(attr.WEDDING_THRESHOLD_BREACHED) is True:
            facts.breaches += 1
        critical = attributes.get(attr.WEDDING_CRITICAL) is True
        facts.critical += critical
        if threshold is None or not threshold > 0:
            self._without_threshold += 1
            return
        wedding_day = band == _WEDDING_DAY or (
            critical and attributes.get(attr.WEDDING_SATURDAY) is True
        )
        key = (threshold, wedding_day)
        count = facts.thresholds.get(key)
        if count is not None:
            facts.thresholds[key] = count + 1
        elif len(facts.thresholds) < MAX_THRESHOLDS:
            facts.thresholds[key] = 1
        else:
            self._thresholds_dropped += 1

    def _slot(self, index: int, endpoint: str, band: str, failed: bool) -> _Slot:
        slots = self._pending.get(index)
        if slots is None:
            if len(self._pending) >= PENDING_SLOTS:
                self.flush()
            slots = self._pending[index] = {}
        key = (endpoint, band, failed)
        slot = slots.get(key)
        if slot is None:
            slot = slots[key] = _Slot()
        return slot

    def _fact(self, index: int, endpoint: str, band: str) -> _Facts:
        slots = self._facts.get(index)
        if slots is None:
            slots = self._facts[index] = {}
            while len(self._facts) > self._fact_slots:
                del self._facts[min(self._facts)]
            if index not in self._facts:  # older than the ring's reach: counted, then dropped
                return _Facts()
        facts = slots.get((endpoint, band))
        if facts is None:
            facts = slots[(endpoint, band)] = _Facts()
        return facts

    def flush(self) -> None:
        """Move the pre-aggregated slots into the window store."""
        store, slot_ns = self.store, self._slot_ns
        for index, slots in self._pending.items():
            time_ns = index * slot_ns
            for (endpoint, band, failed), slot in slots.items():
                series = (endpoint, band)
                store.add_durations(time_ns, series, slot.durations, error=failed)
                for apdex, count in slot.apdex.items():
                    store.add_apdex(time_ns, endpoint, band, apdex, count)
                if slot.cache_hits or slot.cache_misses:
                    store.add_cache(time_ns, series, hits=slot.cache_hits, misses=slot.cache_misses)
                store.add_db_ms(time_ns, series, slot.db_ms)
        self._pending.clear()

    def tally(self) -> Tally:
        """The counts so far."""
        return Tally(
            spans=self._spans,
            requests=self._requests,
            unenriched=self._unenriched,
            unusable=self._unusable,
            overflow=self._overflow,
            without_threshold=self._without_threshold,
            thresholds_dropped=self._thresholds_dropped,
            newest_ns=self._newest_ns,
        )

    def _window_facts(self, now_ns: int, window: str) -> dict[tuple[str, str], list[_Facts]]:
        """The facts of the slots `WindowStore.window` merges for ``window``, per series."""
        window_s = WINDOWS[window]
        fine = self.store.fine
        ring = (
            self.store.fine if window_s <= fine.slot_s * (fine.max_slots - 1) else self.store.coarse
        )
        ring_ns = ring.slot_s * _NS_PER_S
        oldest, newest = (now_ns - window_s * _NS_PER_S) // ring_ns, now_ns // ring_ns
        found: dict[tuple[str, str], list[_Facts]] = {}
        for index, slots in self._facts.items():
            if oldest < index * self._slot_ns // ring_ns <= newest:
                for series, facts in slots.items():
                    found.setdefault(series, []).append(facts)
        return found

    def breaches(self, now_ns: int, window: str) -> dict[str, int]:
        """Requests over their threshold per endpoint, in ``window`` back from ``now_ns``."""
        totals: dict[str, int] = {}
        for (endpoint, _band), facts in self._window_facts(now_ns, window).items():
            count = sum(item.breaches for item in facts)
            if count:
                totals[endpoint] = totals.get(endpoint, 0) + count
        return totals

    def judgements(
        self, now_ns: int, *, default_threshold_ms: float
    ) -> dict[str, EndpointJudgement]:
        """Each endpoint's judgement in the hour back from ``now_ns``, as its spans carried it."""
        per_endpoint: dict[str, dict[str, list[_Facts]]] = {}
        for (endpoint, band), facts in self._window_facts(now_ns, "1h").items():
            per_endpoint.setdefault(endpoint, {})[band] = facts
        return {
            endpoint: _judgement(endpoint, bands, default_threshold_ms)
            for endpoint, bands in per_endpoint.items()
        }


def _most_common(counts: Mapping[float, int]) -> float:
    """The value counted most often; the lowest of equals."""
    return min(counts, key=lambda value: (-counts[value], value))


def _judgement(
    endpoint: str, bands: Mapping[str, list[_Facts]], default_threshold_ms: float
) -> EndpointJudgement:
    overall: dict[float, int] = {}
    band_modes: dict[str, float] = {}
    wedding_day: list[float] = []
    critical = False
    for band, facts in bands.items():
        counts: dict[float, int] = {}
        for item in facts:
            critical = critical or item.critical > 0
            for (threshold, on_wedding_day), count in item.thresholds.items():
                counts[threshold] = counts.get(threshold, 0) + count
                if on_wedding_day:
                    wedding_day.append(threshold)
        if counts:
            band_modes[band] = _most_common(counts)
            for threshold, count in counts.items():
                overall[threshold] = overall.get(threshold, 0) + count
    if not overall:
        return EndpointJudgement(
            name=endpoint,
            critical=critical,
            threshold_ms=default_threshold_ms,
            band_thresholds_ms={},
            wedding_day_threshold_ms=default_threshold_ms,
            wedding_day_traffic=0,
            from_spans=False,
        )
    traffic = sum(
        count
        for facts in bands.values()
        for item in facts
        for (_threshold, on_wedding_day), count in item.thresholds.items()
        if on_wedding_day
    )
    return EndpointJudgement(
        name=endpoint,
        critical=critical,
        threshold_ms=_most_common(overall),
        band_thresholds_ms=band_modes,
        wedding_day_threshold_ms=min(wedding_day) if wedding_day else min(overall),
        wedding_day_traffic=traffic,
    )


class SpanJudgedModel(PerformanceModel):
    """The live metrics' model, judging by what the spans carried instead of by a catalogue.

    Endpoints are the spans' ``wedding.endpoint`` names, and only those: no
    catalogue adds critical endpoints without traffic. Thresholds and the
    critical flag come from `EndpointJudgement`s.
    """

    def __init__(self, judgements: Mapping[str, EndpointJudgement], config: WeddingConfig) -> None:
        super().__init__(config.replace(endpoints=()))
        self.judgements = judgements

    def _judged(self, name: str) -> EndpointJudgement:
        judged = self.judgements.get(name)
        if judged is None:  # traffic the hour's facts do not hold: judged by the default
            return _judgement(name, {}, self.config.default_threshold_ms)
        return judged

    def spec(self, name: str) -> EndpointSpec:
        """The endpoint as its spans described it: threshold carried most often, critical flag."""
        judged = self._judged(name)
        return EndpointSpec(
            name=name, patterns=(), threshold_ms=judged.threshold_ms, critical=judged.critical
        )

    def wedding_day_threshold_ms(self, spec: EndpointSpec) -> float:
        """The tightest threshold of the endpoint's wedding-day traffic, else of all its spans."""
        return self._judged(spec.name).wedding_day_threshold_ms

    def band_threshold_ms(self, spec: EndpointSpec, band: str) -> float:
        """The threshold the band's spans carried most often."""
        return self._judged(spec.name).band_thresholds_ms.get(band, spec.threshold_ms)
