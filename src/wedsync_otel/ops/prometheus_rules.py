"""Prometheus recording and alerting rules generated from a `WeddingConfig`.

**What Prometheus holds.** wedsync-otel exports OTLP; Prometheus gets it from the
Collector (``prometheusremotewrite``, or the ``prometheus`` exporter with native
histograms) or from its own OTLP receiver. Names follow the OpenTelemetry to
Prometheus rules: dots become ``_``, the unit is appended (``ms`` is
``milliseconds``; ``{request}`` is an annotation and is dropped) and monotonic
sums end in ``_total``:

- ``wedding_server_duration_milliseconds``: labels ``wedding_endpoint``,
  ``wedding_critical``, ``wedding_proximity``, ``http_response_status_class``;
- ``wedding_apdex_requests_total``: ``wedding_endpoint``, ``wedding_proximity``,
  ``wedding_apdex``;
- ``wedding_threshold_breaches_total``: ``wedding_endpoint``, ``wedding_critical``,
  ``wedding_proximity``;
- ``wedding_cache_requests_total``: ``wedding_endpoint``, ``wedding_proximity``,
  ``cache_result`` (``hit``/``miss``);
- ``wedding_db_duration_milliseconds``: ``wedding_endpoint``, ``wedding_proximity``.

The two durations are base-2 exponential histograms, which Prometheus stores as
*native* histograms (the default form here). ``histograms="classic"`` writes the
same rules over ``_bucket``/``_sum``/``_count`` series, for a pipeline that
re-aggregates to explicit buckets. The Python ``opentelemetry-exporter-prometheus``
(0.66b1) is not such a pipeline: an exponential histogram makes its whole scrape
fail, so wedsync-otel's metrics must reach Prometheus through OTLP, with cumulative
temporality (the conversion drops delta exponential histograms).

**The latency objective** of an endpoint: ``slo_target`` of its requests within
their wedding-aware threshold. The error ratio is
``wedding_threshold_breaches_total / wedding_apdex_requests_total`` (every request
is counted once by Apdex class), so it honours every band's threshold. Alerts
use only these counters: they work even where the histograms are lost.

**Alerts**: the multiwindow, multi-burn-rate pairs of the Google SRE workbook
(`BURN_RATE_PAIRS`). ``WeddingLatencyBudgetBurn`` is ``critical`` for a fast or
medium burn on a critical endpoint and ``warning`` otherwise.
``WeddingDayLatencyBudgetBurn`` is ``emergency``: a fast or medium burn on a
critical endpoint during wedding-day traffic, that is the endpoint's
``wedding_day`` band, or (Saturday mode) any of its traffic on a Saturday.

**Saturdays and time zones.** PromQL's ``day_of_week()`` works in UTC. The
rules test "Saturday" under every UTC offset the platform zone uses (sampled
over `OFFSET_YEARS`): exact for a zone without daylight saving, and for one with
it a Saturday window widened by the size of the shift (one hour for
Europe/London: Friday 23:00 to Sunday 00:00 UTC), so no Saturday hour is missed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import yaml

from wedsync_otel import attributes as attr
from wedsync_otel.calendar import ApdexClass, Band
from wedsync_otel.catalogue import EndpointSpec
from wedsync_otel.config import WeddingConfig
from wedsync_otel.metrics import names
from wedsync_otel.metrics.prometheus_names import prometheus_label_name, prometheus_metric_name
from wedsync_otel.rules import threshold_ms

HistogramForm = Literal["native", "classic"]
"""How the duration histograms look in Prometheus."""

DEFAULT_SLO_TARGET: Final = 0.99
"""Share of an endpoint's requests that must be within their threshold."""

OFFSET_YEARS: Final = range(2024, 2044)
"""Years whose UTC offsets make up a zone's Saturday test (a fixed span: output is stable)."""


@dataclass(frozen=True, slots=True)
class BurnRatePair:
    """One multiwindow alert: both windows must burn the budget ``factor`` times too fast."""

    long: str
    short: str
    factor: float
    pages: bool
    """A fast or medium burn, worth waking someone; a slow burn is a ticket."""


BURN_RATE_PAIRS: Final = (
    BurnRatePair(long="1h", short="5m", factor=14.4, pages=True),
    BurnRatePair(long="6h", short="30m", factor=6.0, pages=True),
    BurnRatePair(long="3d", short="6h", factor=1.0, pages=False),
)
"""The Google SRE workbook's pairs: 2% of a 30-day budget in 1 h, 5% in 6 h, 10% in 3 d."""

SLO_WINDOWS: Final = ("5m", "30m", "1h", "6h", "3d")
"""Every window an alert reads, shortest first."""

PERFORMANCE_WINDOWS: Final = ("5m", "1h")
"""Windows of the percentile, Apdex, health, cache and DB recording rules."""

QUANTILES: Final = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))

LATENCY_ALERT: Final = "WeddingLatencyBudgetBurn"
WEDDING_DAY_ALERT: Final = "WeddingDayLatencyBudgetBurn"

_SATURDAY = 6  # PromQL day_of_week(): 0 is Sunday
SERVER_DURATION: Final = prometheus_metric_name(names.SERVER_DURATION, "ms")
DB_DURATION: Final = prometheus_metric_name(names.DB_DURATION, "ms")
APDEX_REQUESTS: Final = prometheus_metric_name(
    names.APDEX_REQUESTS, "{request}", monotonic_sum=True
)
THRESHOLD_BREACHES: Final = prometheus_metric_name(
    names.THRESHOLD_BREACHES, "{request}", monotonic_sum=True
)
CACHE_REQUESTS: Final = prometheus_metric_name(
    names.CACHE_REQUESTS, "{request}", monotonic_sum=True
)

ENDPOINT: Final = prometheus_label_name(attr.WEDDING_ENDPOINT)
PROXIMITY: Final = prometheus_label_name(attr.WEDDING_PROXIMITY)
APDEX: Final = prometheus_label_name(attr.WEDDING_APDEX)
STATUS_CLASS: Final = prometheus_label_name(names.STATUS_CLASS)
CACHE_RESULT: Final = prometheus_label_name(names.CACHE_RESULT)

_BY_ENDPOINT: Final = (ENDPOINT,)
_BY_BAND: Final = (ENDPOINT, PROXIMITY)


def _level(labels: Sequence[str]) -> str:
    """The ``level`` part of a recording rule name: the labels it keeps."""
    return "wedding_" + "_".join(label.removeprefix("wedding_") for label in labels)


def requests_rate(labels: Sequence[str], window: str) -> str:
    """Recorded name: requests per second over ``window``, by ``labels``."""
    return f"{_level(labels)}:wedding_requests:rate{window}"


def breaches_rate(labels: Sequence[str], window: str) -> str:
    """Recorded name: requests over their threshold per second over ``window``."""
    return f"{_level(labels)}:wedding_threshold_breaches:rate{window}"


def error_ratio(labels: Sequence[str], window: str) -> str:
    """Recorded name: the latency objective's error ratio (breaches / requests) over ``window``."""
    return f"{_level(labels)}:wedding_threshold_breaches:ratio_rate{window}"


def quantile_name(labels: Sequence[str], quantile: str, window: str) -> str:
    """Recorded name: a latency percentile (ms) of the merged histograms over ``window``."""
    return f"{_level(labels)}:{SERVER_DURATION}:{quantile}_rate{window}"


def apdex_ratio(labels: Sequence[str], window: str) -> str:
    """Recorded name: Apdex, (satisfied + tolerating / 2) / requests, over ``window``."""
    return f"{_level(labels)}:wedding_apdex:ratio_rate{window}"


def server_error_ratio(window: str) -> str:
    """Recorded name: each endpoint's share of requests answered with a 5xx over ``window``."""
    return f"{_level(_BY_ENDPOINT)}:wedding_server_errors:ratio_rate{window}"


def health_score(window: str) -> str:
    """Recorded name: each endpoint's 0-100 health score over ``window``."""
    return f"{_level(_BY_ENDPOINT)}:wedding_health:score_rate{window}"


def cache_hit_ratio(window: str) -> str:
    """Recorded name: each endpoint's cache hits / cache reads over ``window``."""
    return f"{_level(_BY_ENDPOINT)}:wedding_cache_hits:ratio_rate{window}"


def db_time_ratio(window: str) -> str:
    """Recorded name: each endpoint's database time / request time over ``window``."""
    return f"{_level(_BY_ENDPOINT)}:wedding_db_time:ratio_rate{window}"


BASE_THRESHOLD: Final = "wedding_endpoint:wedding_threshold_milliseconds:base"
"""Recorded name: each endpoint's base threshold, a constant from the config."""


def utc_offsets_s(timezone: str) -> tuple[int, ...]:
    """Every UTC offset (seconds) ``timezone`` uses in `OFFSET_YEARS`, smallest first."""
    zone = zoneinfo.ZoneInfo(timezone)
    offsets: set[int] = set()
    day = dt.datetime(OFFSET_YEARS.start, 1, 1, 12, tzinfo=dt.UTC)
    end = dt.datetime(OFFSET_YEARS.stop, 1, 1, tzinfo=dt.UTC)
    while day < end:
        offset = day.astimezone(zone).utcoffset()
        if offset is not None:
            offsets.add(int(offset.total_seconds()))
        day += dt.timedelta(days=1)
    return tuple(sorted(offsets))


def saturday_expr(timezone: str) -> str:
    """PromQL that is non-empty while it is Saturday in ``timezone`` (see the module notes)."""
    tests = []
    for offset in utc_offsets_s(timezone):
        now = "time()" if offset == 0 else f"time() {'+' if offset > 0 else '-'} {abs(offset)}"
        tests.append(f"day_of_week(vector({now})) == {_SATURDAY}")
    return " or ".join(tests)


def check_slo_target(slo_target: float) -> None:
    """Raise `ValueError` unless every burn-rate alert can fire at ``slo_target``."""
    if not 0 < slo_target < 1:
        raise ValueError(f"slo_target must be between 0 and 1, got {slo_target!r}")
    fastest = max(pair.factor for pair in BURN_RATE_PAIRS)
    if fastest * (1 - slo_target) >= 1:
        raise ValueError(
            f"slo_target {slo_target!r} leaves an error budget so large that a {fastest:g}x "
            f"burn is more than every request: use a target above {1 - 1 / fastest:.4f}"
        )


def rules_document(
    config: WeddingConfig,
    *,
    slo_target: float = DEFAULT_SLO_TARGET,
    histograms: HistogramForm = "native",
) -> dict[str, Any]:
    """The rule file as plain data: a recording group, then an alerting group."""
    check_slo_target(slo_target)
    if histograms not in ("native", "classic"):
        raise ValueError(f"histograms must be 'native' or 'classic', got {histograms!r}")
    return {
        "groups": [
            {"name": "wedsync-otel.recording", "rules": list(_recording_rules(config, histograms))},
            {"name": "wedsync-otel.alerts", "rules": list(_alerting_rules(config, slo_target))},
        ]
    }


def render_rules(
    config: WeddingConfig,
    *,
    slo_target: float = DEFAULT_SLO_TARGET,
    histograms: HistogramForm = "native",
) -> str:
    """The rule file as YAML, with a header saying how it was made."""
    document = rules_document(config, slo_target=slo_target, histograms=histograms)
    offsets = ", ".join(_utc_offset_text(offset) for offset in utc_offsets_s(config.timezone))
    header = (
        "# Generated by `wedsync-otel rules` from WeddingConfig: do not edit, regenerate.\n"
        f"# Latency objective: {_percent(slo_target)} of each endpoint's requests within their "
        "wedding-aware threshold.\n"
        f"# Histograms: {histograms}. Saturday: {config.timezone}, tested at UTC {offsets}"
        f"{'' if config.saturday_mode else ' (Saturday mode off)'}.\n"
    )
    return header + dump_yaml(document)


# --- recording rules ---------------------------------------------------------------------


def _rule(record: str, expr: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": record, "expr": expr}
    if labels:
        rule["labels"] = dict(labels)
    return rule


def _by(labels: Sequence[str]) -> str:
    return ", ".join(labels)


def _sum_rate(metric: str, labels: Sequence[str], window: str, selector: str = "") -> str:
    braces = f"{{{selector}}}" if selector else ""
    return f"sum by ({_by(labels)}) (rate({metric}{braces}[{window}]))"


def _ratio(part: str, whole: str) -> str:
    """``part / whole``, reading a missing ``part`` series as 0 wherever ``whole`` has data."""
    return f"(\n  {part}\n  or\n  0 * {whole}\n)\n/\n{whole}"


def _histogram_count(
    metric: str, labels: Sequence[str], window: str, form: HistogramForm, selector: str = ""
) -> str:
    if form == "classic":
        return _sum_rate(f"{metric}_count", labels, window, selector)
    braces = f"{{{selector}}}" if selector else ""
    return f"sum by ({_by(labels)}) (histogram_count(rate({metric}{braces}[{window}])))"


def _histogram_sum(metric: str, labels: Sequence[str], window: str, form: HistogramForm) -> str:
    if form == "classic":
        return _sum_rate(f"{metric}_sum", labels, window)
    return f"sum by ({_by(labels)}) (histogram_sum(rate({metric}[{window}])))"


def _histogram_quantile(
    quantile: float, metric: str, labels: Sequence[str], window: str, form: HistogramForm
) -> str:
    if form == "classic":
        merged = _sum_rate(f"{metric}_bucket", ("le", *labels), window)
    else:
        merged = _sum_rate(metric, labels, window)
    return f"histogram_quantile({quantile}, {merged})"


def _recording_rules(config: WeddingConfig, form: HistogramForm) -> Iterator[dict[str, Any]]:
    for spec in config.endpoints:
        yield _rule(BASE_THRESHOLD, f"vector({spec.threshold_ms:g})", {ENDPOINT: spec.name})
    for window in SLO_WINDOWS:
        yield from _slo_rules(window)
    for window in PERFORMANCE_WINDOWS:
        yield from _performance_rules(window, form)


def _slo_rules(window: str) -> Iterator[dict[str, Any]]:
    """Request and breach rates by band, then by endpoint, and the error ratio of each."""
    yield _rule(requests_rate(_BY_BAND, window), _sum_rate(APDEX_REQUESTS, _BY_BAND, window))
    yield _rule(breaches_rate(_BY_BAND, window), _sum_rate(THRESHOLD_BREACHES, _BY_BAND, window))
    for name in (requests_rate, breaches_rate):
        yield _rule(name(_BY_ENDPOINT, window), f"sum by ({ENDPOINT}) ({name(_BY_BAND, window)})")
    for labels in (_BY_BAND, _BY_ENDPOINT):
        yield _rule(
            error_ratio(labels, window),
            _ratio(breaches_rate(labels, window), requests_rate(labels, window)),
        )


def _performance_rules(window: str, form: HistogramForm) -> Iterator[dict[str, Any]]:
    """Percentiles by band and endpoint; Apdex, 5xx share, health, cache and DB by endpoint."""
    for labels in (_BY_BAND, _BY_ENDPOINT):
        for label, quantile in QUANTILES:
            yield _rule(
                quantile_name(labels, label, window),
                _histogram_quantile(quantile, SERVER_DURATION, labels, window, form),
            )
    for labels in (_BY_BAND, _BY_ENDPOINT):
        requests = requests_rate(labels, window)
        satisfied = _sum_rate(APDEX_REQUESTS, labels, window, f'{APDEX}="{ApdexClass.SATISFIED}"')
        tolerating = _sum_rate(APDEX_REQUESTS, labels, window, f'{APDEX}="{ApdexClass.TOLERATING}"')
        yield _rule(
            apdex_ratio(labels, window),
            f"(\n  ({satisfied} or 0 * {requests})\n"
            f"  +\n  0.5 * ({tolerating} or 0 * {requests})\n)\n/\n{requests}",
        )
    errors = server_error_ratio(window)
    yield _rule(
        errors,
        _ratio(
            _histogram_count(SERVER_DURATION, _BY_ENDPOINT, window, form, f'{STATUS_CLASS}="5xx"'),
            _histogram_count(SERVER_DURATION, _BY_ENDPOINT, window, form),
        ),
    )
    p95 = quantile_name(_BY_ENDPOINT, "p95", window)
    yield _rule(
        health_score(window),
        f"100\n* {apdex_ratio(_BY_ENDPOINT, window)}\n* (1 - {errors})\n"
        f"* clamp(1 - ({p95} / {BASE_THRESHOLD} - 1) / 3, 0, 1)",
    )
    hits = _sum_rate(CACHE_REQUESTS, _BY_ENDPOINT, window, f'{CACHE_RESULT}="hit"')
    yield _rule(
        cache_hit_ratio(window),
        _ratio(hits, _sum_rate(CACHE_REQUESTS, _BY_ENDPOINT, window)),
    )
    # Means per request: DB time is measured on sampled requests only, durations on all.
    yield _rule(
        db_time_ratio(window),
        f"({_histogram_sum(DB_DURATION, _BY_ENDPOINT, window, form)}\n/\n"
        f"{_histogram_count(DB_DURATION, _BY_ENDPOINT, window, form)})\n/\n"
        f"({_histogram_sum(SERVER_DURATION, _BY_ENDPOINT, window, form)}\n/\n"
        f"{_histogram_count(SERVER_DURATION, _BY_ENDPOINT, window, form)})",
    )


# --- alerting rules ----------------------------------------------------------------------


def _alerting_rules(config: WeddingConfig, slo_target: float) -> Iterator[dict[str, Any]]:
    for spec in config.endpoints:
        for pair in BURN_RATE_PAIRS:
            yield _latency_alert(spec, pair, config, slo_target)
    saturday = saturday_expr(config.timezone)
    for spec in config.endpoints:
        if not spec.critical:
            continue
        for pair in BURN_RATE_PAIRS:
            if not pair.pages:
                continue
            if config.saturday_mode:
                yield _saturday_alert(spec, pair, config, slo_target, saturday)
            yield _wedding_day_band_alert(spec, pair, config, slo_target)


def _burning(
    spec: EndpointSpec, pair: BurnRatePair, slo_target: float, *, band: Band | None = None
) -> str:
    limit = _number(pair.factor * (1 - slo_target))
    labels = _BY_ENDPOINT if band is None else _BY_BAND
    selector = f'{ENDPOINT}="{spec.name}"' + ("" if band is None else f', {PROXIMITY}="{band}"')
    long = f"{error_ratio(labels, pair.long)}{{{selector}}} > {limit}"
    short = f"{error_ratio(labels, pair.short)}{{{selector}}} > {limit}"
    return f"{long}\nand\n{short}"


def _alert(
    name: str,
    expr: str,
    labels: Mapping[str, str],
    summary: str,
    description: str,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "labels": dict(labels),
        "annotations": {"summary": summary, "description": description},
    }


def _labels(spec: EndpointSpec, pair: BurnRatePair, severity: str, **more: str) -> dict[str, str]:
    """Static alert labels; naming the endpoint keeps each rule distinct (promtool's lint)."""
    return {
        "severity": severity,
        ENDPOINT: spec.name,
        **more,
        "long_window": pair.long,
        "short_window": pair.short,
    }


def _wedding_day_ms(spec: EndpointSpec, config: WeddingConfig) -> float:
    return threshold_ms(
        spec.threshold_ms, Band.WEDDING_DAY, config, critical=spec.critical, saturday=False
    )


def _over(spec: EndpointSpec, pair: BurnRatePair, slo_target: float, requests: str) -> str:
    share = _percent(pair.factor * (1 - slo_target))
    return (
        f"More than {share} of {spec.name} {requests} exceeded their threshold "
        f"over the last {pair.long} and {pair.short}"
    )


def _latency_alert(
    spec: EndpointSpec, pair: BurnRatePair, config: WeddingConfig, slo_target: float
) -> dict[str, Any]:
    severity = "critical" if spec.critical and pair.pages else "warning"
    kind = "critical" if spec.critical else "non-critical"
    return _alert(
        LATENCY_ALERT,
        _burning(spec, pair, slo_target),
        _labels(spec, pair, severity),
        f"{spec.name}: {pair.factor:g}x latency budget burn",
        f"{_over(spec, pair, slo_target, 'requests')} (objective {_percent(slo_target)}; "
        f"base {spec.threshold_ms:g} ms, wedding day {_wedding_day_ms(spec, config):g} ms; "
        f"{kind} endpoint).",
    )


def _saturday_alert(
    spec: EndpointSpec,
    pair: BurnRatePair,
    config: WeddingConfig,
    slo_target: float,
    saturday: str,
) -> dict[str, Any]:
    saturday_ms = threshold_ms(
        spec.threshold_ms, Band.PLANNING, config, critical=spec.critical, saturday=True
    )
    return _alert(
        WEDDING_DAY_ALERT,
        f"(\n{_indent(_burning(spec, pair, slo_target))}\n)\nand on ()\n({saturday})",
        _labels(spec, pair, "emergency", wedding_day_traffic="saturday"),
        f"EMERGENCY {spec.name}: {pair.factor:g}x latency budget burn on a Saturday",
        f"{_over(spec, pair, slo_target, 'requests')}; on a Saturday ({config.timezone}) "
        f"all of it is wedding-day traffic (threshold {saturday_ms:g} ms).",
    )


def _wedding_day_band_alert(
    spec: EndpointSpec, pair: BurnRatePair, config: WeddingConfig, slo_target: float
) -> dict[str, Any]:
    return _alert(
        WEDDING_DAY_ALERT,
        _burning(spec, pair, slo_target, band=Band.WEDDING_DAY),
        _labels(spec, pair, "emergency", wedding_day_traffic="wedding_day"),
        f"EMERGENCY {spec.name}: {pair.factor:g}x latency budget burn for couples marrying today",
        f"{_over(spec, pair, slo_target, 'wedding-day requests')} "
        f"(threshold {_wedding_day_ms(spec, config):g} ms).",
    )


# --- formatting --------------------------------------------------------------------------


def _number(value: float) -> str:
    """A float as PromQL reads it, without binary noise: ``0.144``, not ``0.14400000000000013``."""
    return repr(round(value, 12))


def _percent(ratio: float) -> str:
    return f"{round(ratio * 100, 10):g}%"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _utc_offset_text(offset_s: int) -> str:
    sign = "+" if offset_s >= 0 else "-"
    hours, rest = divmod(abs(offset_s), 3600)
    return f"{sign}{hours:02d}{rest // 60:02d}"


class _Dumper(yaml.SafeDumper):
    """`yaml.SafeDumper` that writes multi-line strings (PromQL) as ``|`` blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(document: Mapping[str, Any]) -> str:
    """``document`` as YAML in its own key order, PromQL as readable blocks; safe types only."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
