"""Tests for wedsync_otel.ops.keda: the ScaledObject, its HPA behaviour and its cron calendar.

The HPA ``behavior`` is checked with the ``kubernetes`` client's ``autoscaling/v2`` models; the
ScaledObject against the KEDA 2.14 fields it uses (`KEDA_2_14`, from keda.sh/docs/2.14: the
ScaledObject specification and the ``cron`` and ``prometheus`` scalers). The cron schedules are
expanded by a small 5-field matcher written here (numbers, ranges, lists and ``*``: the subset
the generator emits, with robfig/cron's day rule), and KEDA's cron scaler rule is replayed over
sample months: active when its next ``end`` firing comes no later than its next ``start``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import shutil
import subprocess
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from servers import require
from wedsync_otel import WeddingConfig
from wedsync_otel.capacity import (
    EXAMPLE_BASE_RPS,
    EXAMPLE_INSTANCE_RPS,
    CapacityAdvisor,
    read_wedding_dates,
    wedding_window,
)
from wedsync_otel.ops import keda
from wedsync_otel.ops.keda import ScalingOptions

ROOT = Path(__file__).resolve().parent.parent
KEDA_DIR = ROOT / "collector-config" / "keda"
DEFAULT_FILE = KEDA_DIR / "scaledobject.yaml"
WEDDINGS_FILE = KEDA_DIR / "scaledobject-weddings.yaml"
WEDDINGS_CSV = KEDA_DIR / "weddings.example.csv"
RULES_FILE = ROOT / "collector-config" / "prometheus" / "wedding-rules.yml"
EXAMPLE_TODAY = dt.date(2026, 6, 1)

ADVISOR = CapacityAdvisor(base_rps=EXAMPLE_BASE_RPS, instance_rps=EXAMPLE_INSTANCE_RPS)
UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)


def advisor_in(zone: str) -> CapacityAdvisor:
    return CapacityAdvisor(
        base_rps=EXAMPLE_BASE_RPS,
        instance_rps=EXAMPLE_INSTANCE_RPS,
        config=WeddingConfig(timezone=zone),
    )


def example_weddings() -> tuple[dt.date, ...]:
    return read_wedding_dates(WEDDINGS_CSV)


def triggers(document: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [t for t in document["spec"]["triggers"] if t["type"] == kind]


# --- the KEDA 2.14 fields this generator uses ----------------------------------------------


@dataclass(frozen=True)
class Opt:
    """An optional field."""

    spec: object


@dataclass(frozen=True)
class ListOf:
    spec: object


@dataclass(frozen=True)
class MapOf:
    """A map of string keys to values of one type (labels, annotations, trigger metadata)."""

    value: type


@dataclass(frozen=True)
class OneOf:
    values: tuple[object, ...]


NAME = str
BEHAVIOR = dict  # checked against the kubernetes client's models below

TRIGGER = {
    "type": OneOf(("cron", "prometheus")),
    "metadata": MapOf(str),  # KEDA trigger metadata is map[string]string
    "name": Opt(str),
    "metricType": Opt(OneOf(("AverageValue", "Value", "Utilization"))),
    "useCachedMetrics": Opt(bool),
    "authenticationRef": Opt({"name": str, "kind": Opt(str)}),
}
KEDA_2_14 = {
    "apiVersion": OneOf(("keda.sh/v1alpha1",)),
    "kind": OneOf(("ScaledObject",)),
    "metadata": {
        "name": NAME,
        "namespace": Opt(NAME),
        "labels": Opt(MapOf(str)),
        "annotations": Opt(MapOf(str)),
    },
    "spec": {
        "scaleTargetRef": {
            "apiVersion": Opt(str),
            "kind": Opt(str),
            "name": NAME,
            "envSourceContainerName": Opt(str),
        },
        "pollingInterval": Opt(int),
        "cooldownPeriod": Opt(int),
        "initialCooldownPeriod": Opt(int),
        "idleReplicaCount": Opt(int),
        "minReplicaCount": Opt(int),
        "maxReplicaCount": Opt(int),
        "fallback": Opt({"failureThreshold": int, "replicas": int}),
        "advanced": Opt(
            {
                "restoreToOriginalReplicaCount": Opt(bool),
                "horizontalPodAutoscalerConfig": Opt({"name": Opt(str), "behavior": Opt(BEHAVIOR)}),
            }
        ),
        "triggers": ListOf(TRIGGER),
    },
}
"""The ScaledObject fields of KEDA 2.14 (keda.sh/docs/2.14/reference/scaledobject-spec)."""

SCALER_METADATA = {
    # keda.sh/docs/2.14/scalers/cron: every field required.
    "cron": ({"timezone", "start", "end", "desiredReplicas"}, set()),
    # keda.sh/docs/2.14/scalers/prometheus
    "prometheus": (
        {"serverAddress", "query", "threshold"},
        {
            "activationThreshold",
            "namespace",
            "customHeaders",
            "ignoreNullValues",
            "queryParameters",
            "unsafeSsl",
            "authModes",
        },
    ),
}


def schema_errors(value: object, spec: object, where: str = "") -> Iterator[str]:
    """Every way ``value`` departs from ``spec``, as 'path: problem'."""
    if isinstance(spec, Opt):
        yield from schema_errors(value, spec.spec, where)
    elif isinstance(spec, OneOf):
        if value not in spec.values:
            yield f"{where}: {value!r} not one of {spec.values}"
    elif isinstance(spec, ListOf):
        yield from list_errors(value, spec, where)
    elif isinstance(spec, MapOf):
        yield from map_errors(value, spec, where)
    elif isinstance(spec, dict):
        yield from object_errors(value, spec, where)
    elif isinstance(spec, type):
        if type(value) is not spec:  # bool is not int here
            yield f"{where}: expected {spec.__name__}, got {value!r}"
    else:
        raise AssertionError(f"bad schema at {where}: {spec!r}")


def list_errors(value: object, spec: ListOf, where: str) -> Iterator[str]:
    if not isinstance(value, list) or not value:
        yield f"{where}: expected a non-empty list"
        return
    for index, item in enumerate(value):
        yield from schema_errors(item, spec.spec, f"{where}[{index}]")


def map_errors(value: object, spec: MapOf, where: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{where}: expected a map"
        return
    for key, item in value.items():
        if not isinstance(key, str) or type(item) is not spec.value:
            yield f"{where}.{key}: expected {spec.value.__name__}, got {item!r}"


def object_errors(value: object, spec: dict[str, object], where: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{where}: expected a map"
        return
    for key in value.keys() - spec.keys():
        yield f"{where}.{key}: not a KEDA 2.14 field"
    for key, field_spec in spec.items():
        if key in value:
            yield from schema_errors(value[key], field_spec, f"{where}.{key}")
        elif not isinstance(field_spec, Opt):
            yield f"{where}.{key}: missing"


def keda_problems(document: Mapping[str, Any]) -> list[str]:
    problems = list(schema_errors(document, KEDA_2_14))
    spec = document["spec"]
    if spec["minReplicaCount"] > spec["maxReplicaCount"]:
        problems.append("minReplicaCount above maxReplicaCount")
    for index, trigger in enumerate(spec["triggers"]):
        required, optional = SCALER_METADATA[trigger["type"]]
        keys = set(trigger["metadata"])
        if required - keys or keys - required - optional:
            problems.append(f"triggers[{index}].metadata: {sorted(keys)}")
    return problems


def test_the_scaled_object_uses_only_keda_2_14_fields() -> None:
    """The generated ScaledObject has exactly the KEDA 2.14 fields, types and required keys."""
    document = keda.scaled_object(ADVISOR, weddings=example_weddings(), today=EXAMPLE_TODAY)
    assert keda_problems(document) == []


def test_the_schema_check_catches_a_misspelt_field_and_a_number_in_metadata() -> None:
    """The schema check itself rejects an unknown field and a non-string metadata value."""
    document = keda.scaled_object(ADVISOR)
    document["spec"]["minReplicas"] = 3
    document["spec"]["triggers"][0]["metadata"]["desiredReplicas"] = 20
    problems = keda_problems(document)
    assert ".spec.minReplicas: not a KEDA 2.14 field" in problems
    assert any("desiredReplicas: expected str" in p for p in problems)


def test_cron_metadata_parses_as_keda_reads_it() -> None:
    """desiredReplicas is an integer string and the time zone an IANA name, in every cron."""
    document = keda.scaled_object(ADVISOR, weddings=example_weddings(), today=EXAMPLE_TODAY)
    for trigger in triggers(document, "cron"):
        meta = trigger["metadata"]
        assert int(meta["desiredReplicas"]) >= 1
        assert zoneinfo.ZoneInfo(meta["timezone"]).key == "Europe/London"
        assert meta["start"] != meta["end"]  # the cron scaler refuses equal start and end


def test_prometheus_thresholds_come_from_the_capacity_figures() -> None:
    """The rate target is instance_rps x utilisation; the ratio target is p95_ratio_target."""
    document = keda.scaled_object(ADVISOR, options=ScalingOptions(p95_ratio_target=0.9))
    rate, ratio = triggers(document, "prometheus")
    assert (rate["metricType"], float(rate["metadata"]["threshold"])) == ("AverageValue", 20.0)
    assert (ratio["metricType"], float(ratio["metadata"]["threshold"])) == ("Value", 0.9)


def test_the_p95_query_judges_the_critical_endpoints_of_the_config() -> None:
    """The ratio query selects the config's critical endpoints and divides by their threshold."""
    query = keda.p95_ratio_query(["payments", "rsvp"])
    assert query == (
        "max(wedding_endpoint:wedding_server_duration_milliseconds:p95_rate5m"
        '{wedding_endpoint=~"payments|rsvp"} / on (wedding_endpoint) '
        "wedding_endpoint:wedding_threshold_milliseconds:base)"
    )


def test_the_queries_read_rules_the_prometheus_rules_file_records() -> None:
    """Every recording rule a query reads is recorded in collector-config/prometheus."""
    if not RULES_FILE.exists():
        pytest.skip(f"{RULES_FILE} is not in this tree")
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    assert set(keda.RECORDING_RULES) <= recorded


def test_promtool_evaluates_the_queries_to_the_figures_keda_compares(tmp_path: Path) -> None:
    """promtool evaluates the rate query to the fleet sum, the ratio to the worst critical one."""
    promtool = shutil.which("promtool")
    if promtool is None:
        require("promtool", FileNotFoundError("run scripts/install-prometheus-tools.sh"))
    rate, ratio = (
        t["metadata"]["query"] for t in triggers(keda.scaled_object(ADVISOR), "prometheus")
    )
    series = {
        ("wedding_endpoint:wedding_requests:rate5m", "payments"): 30,
        ("wedding_endpoint:wedding_requests:rate5m", "supplier_profiles"): 10,
        (keda.P95_RULE, "payments"): 120,  # 0.8 of 150 ms
        (keda.P95_RULE, "rsvp"): 100,  # 0.5 of 200 ms
        (keda.P95_RULE, "supplier_profiles"): 1000,  # 2.0 of 500 ms, not critical
        (keda.THRESHOLD_RULE, "payments"): 150,
        (keda.THRESHOLD_RULE, "rsvp"): 200,
        (keda.THRESHOLD_RULE, "supplier_profiles"): 500,
    }
    test_file = tmp_path / "keda-queries.test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [
                            {"series": f'{name}{{wedding_endpoint="{ep}"}}', "values": f"{v}x5"}
                            for (name, ep), v in series.items()
                        ],
                        "promql_expr_test": [
                            {
                                "expr": rate,
                                "eval_time": "2m",
                                "exp_samples": [{"labels": "{}", "value": 40}],
                            },
                            {
                                "expr": ratio,
                                "eval_time": "2m",
                                "exp_samples": [{"labels": "{}", "value": 0.8}],
                            },
                        ],
                    }
                ],
            },
            sort_keys=False,
        )
    )
    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the HPA behaviour, through the kubernetes client's models -----------------------------


def k8s_model(data: Mapping[str, Any], type_name: str) -> Any:
    """Build a kubernetes client model from API (camelCase) data, refusing unknown keys."""
    client = pytest.importorskip("kubernetes.client", reason="the kubernetes client (dev extra)")
    cls = getattr(client, type_name)
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    unknown = set(data) - set(by_json)
    assert not unknown, f"{type_name} has no field {sorted(unknown)}"
    arguments = {}
    for key, value in data.items():
        attr = by_json[key]
        kind = cls.openapi_types[attr]
        listed = re.fullmatch(r"[Ll]ist\[(V\w+)\]", kind)  # List[...] from client 31 on
        if listed:
            arguments[attr] = [k8s_model(item, listed[1]) for item in value]
        elif kind.startswith("V"):
            arguments[attr] = k8s_model(value, kind)
        else:
            arguments[attr] = value
    return cls(**arguments)


def test_the_hpa_behavior_is_a_valid_autoscaling_v2_behavior() -> None:
    """V2HorizontalPodAutoscalerBehavior built from the dict serialises back to the same dict."""
    client = pytest.importorskip("kubernetes.client", reason="the kubernetes client (dev extra)")
    behavior = keda.scaled_object(ADVISOR)["spec"]["advanced"]["horizontalPodAutoscalerConfig"][
        "behavior"
    ]
    model = k8s_model(behavior, "V2HorizontalPodAutoscalerBehavior")
    assert isinstance(model.scale_up, client.V2HPAScalingRules)
    assert all(isinstance(p, client.V2HPAScalingPolicy) for p in model.scale_down.policies)
    assert client.ApiClient().sanitize_for_serialization(model) == behavior


def test_scale_up_waits_three_minutes_and_scale_down_ten() -> None:
    """Stabilisation windows are 180 s up and 600 s down, as the performance report asks."""
    model = k8s_model(keda.hpa_behavior(), "V2HorizontalPodAutoscalerBehavior")
    assert model.scale_up.stabilization_window_seconds == 180
    assert model.scale_down.stabilization_window_seconds == 600


def test_hpa_policies_use_the_values_the_kubernetes_api_accepts() -> None:
    """Policy types, select policies and periods are within the autoscaling/v2 API's rules."""
    model = k8s_model(keda.hpa_behavior(), "V2HorizontalPodAutoscalerBehavior")
    for rules in (model.scale_up, model.scale_down):
        assert rules.select_policy in {"Max", "Min", "Disabled"}
        assert 0 <= rules.stabilization_window_seconds <= 3600
        for policy in rules.policies:
            assert policy.type in {"Pods", "Percent"}
            assert policy.value > 0
            assert 0 < policy.period_seconds <= 1800


def test_a_stabilisation_window_over_an_hour_is_refused() -> None:
    """The Kubernetes API caps stabilisation windows at 3600 s, so the generator does too."""
    with pytest.raises(ValueError, match="0-3600"):
        keda.hpa_behavior(scale_down_window_s=3601)


# --- a 5-field cron matcher and KEDA's cron rule ------------------------------------------

CRON_FIELD = re.compile(r"\*|\d+(-\d+)?(,\d+(-\d+)?)*")
RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]
    dom_star: bool
    dow_star: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        fields = expression.split()
        assert len(fields) == 5, expression
        sets = []
        for text, (low, high) in zip(fields, RANGES, strict=True):
            assert CRON_FIELD.fullmatch(text), f"{text!r} in {expression!r}"
            values: set[int] = set()
            for part in text.split(","):
                if part == "*":
                    values |= set(range(low, high + 1))
                    continue
                first, _, last = part.partition("-")
                values |= set(range(int(first), int(last or first) + 1))
            assert values, expression
            assert low <= min(values), expression
            assert max(values) <= high, expression
            sets.append(frozenset(values))
        minute_set, hours, doms, months, dows = sets
        return cls(
            minute_set,
            hours,
            doms,
            months,
            dows,
            dom_star=fields[2] == "*",
            dow_star=fields[4] == "*",
        )

    def matches_day(self, day: dt.date) -> bool:
        dom = day.day in self.doms
        dow = (day.weekday() + 1) % 7 in self.dows  # cron: Sunday is 0
        day_ok = (dom and dow) if (self.dom_star or self.dow_star) else (dom or dow)  # robfig
        return day.month in self.months and day_ok

    def firings(self, tz: zoneinfo.ZoneInfo, first: dt.date, last: dt.date) -> list[dt.datetime]:
        """Every UTC instant in [first, last] local days at which the expression fires."""
        found = []
        day = first
        while day <= last:
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        wall = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)
                        instant = wall.astimezone(UTC)
                        # No generated schedule may fall in a daylight-saving gap.
                        assert instant.astimezone(tz).replace(tzinfo=None) == wall.replace(
                            tzinfo=None
                        )
                        found.append(instant)
            day += dt.timedelta(days=1)
        return found


@dataclass(frozen=True)
class CronTrigger:
    starts: list[dt.datetime]
    ends: list[dt.datetime]
    desired: int

    def active(self, now: dt.datetime) -> bool:
        """KEDA's cron scaler: inactive before the next start when it comes before the next end."""
        next_start = _next(self.starts, now)
        next_end = _next(self.ends, now)
        assert next_end is not None, "scan range too short"
        if next_start is not None and next_start < next_end and now < next_start:
            return False
        return now <= next_end


def _next(instants: Sequence[dt.datetime], now: dt.datetime) -> dt.datetime | None:
    index = bisect.bisect_right(instants, now)  # robfig's Next is strictly after now
    return instants[index] if index < len(instants) else None


def replica_floor(
    document: Mapping[str, Any], first: dt.date, last: dt.date
) -> Callable[[dt.datetime], int]:
    """The replica count the cron triggers and minReplicaCount ask for at an instant."""
    spec = document["spec"]
    crons = []
    for trigger in triggers(document, "cron"):
        meta = trigger["metadata"]
        tz = zoneinfo.ZoneInfo(meta["timezone"])
        scan = (first - dt.timedelta(days=2), last + dt.timedelta(days=400))  # a cron may be yearly
        crons.append(
            CronTrigger(
                Cron.parse(meta["start"]).firings(tz, *scan),
                Cron.parse(meta["end"]).firings(tz, *scan),
                int(meta["desiredReplicas"]),
            )
        )

    def floor(now: dt.datetime) -> int:
        asked = [int(spec["minReplicaCount"]), *(c.desired for c in crons if c.active(now))]
        return min(int(spec["maxReplicaCount"]), max(asked))

    return floor


def minutes(first: dt.datetime, last: dt.datetime) -> Iterator[dt.datetime]:
    now = first
    while now < last:
        yield now
        now += MINUTE


SAMPLES = [
    # June 2026: four Saturdays, the example's Friday and Sunday weddings, all in season.
    ("Europe/London", dt.date(2026, 6, 1), dt.date(2026, 6, 30)),
    ("America/New_York", dt.date(2026, 6, 1), dt.date(2026, 6, 30)),
    # Clocks go back on 25 Oct 2026 in London, and the season ends on 1 November.
    ("Europe/London", dt.date(2026, 10, 23), dt.date(2026, 11, 2)),
    # Clocks go forward on 8 Mar 2026 in New York, off season.
    ("America/New_York", dt.date(2026, 3, 5), dt.date(2026, 3, 15)),
]


@pytest.mark.parametrize(("zone", "first", "last"), SAMPLES)
def test_cron_floors_equal_the_advisor_at_every_minute(
    zone: str, first: dt.date, last: dt.date
) -> None:
    """The replicas the cron triggers ask for equal CapacityAdvisor's at every minute, DST too."""
    advisor = advisor_in(zone)
    weddings = example_weddings()
    document = keda.scaled_object(advisor, weddings=weddings, today=EXAMPLE_TODAY)
    floor = replica_floor(document, first, last)
    tz = advisor.timezone
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz).astimezone(UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(UTC)
    upcoming = frozenset(wedding_window(weddings, today=EXAMPLE_TODAY).upcoming)
    mismatches = [
        (now.astimezone(tz).isoformat(), floor(now), advisor.recommend(now, upcoming).instances)
        for now in minutes(start, end)
        if floor(now) != advisor.recommend(now, upcoming).instances
    ]
    assert mismatches[:5] == []


def changes(
    floor: Callable[[dt.datetime], int], start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    found = []
    previous = floor(start - MINUTE)
    for now in minutes(start, end):
        current = floor(now)
        if current != previous:
            found.append((now, current))
        previous = current
    return found


@pytest.mark.parametrize(("zone", "utc_hour"), [("Europe/London", 7), ("America/New_York", 12)])
def test_the_floor_rises_two_hours_before_each_saturday_and_wedding_peak(
    zone: str, utc_hour: int
) -> None:
    """In June 2026 the floor rises at 08:00 local on each Saturday and example wedding day only."""
    advisor = advisor_in(zone)
    document = keda.scaled_object(advisor, weddings=example_weddings(), today=EXAMPLE_TODAY)
    first, last = dt.date(2026, 6, 1), dt.date(2026, 6, 30)
    floor = replica_floor(document, first, last)
    tz = advisor.timezone
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz).astimezone(UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(UTC)
    found = changes(floor, start, end)
    rises = [now for now, replicas in found if replicas == 20]
    falls = [now for now, replicas in found if replicas == 6]
    peak_days = [6, 12, 13, 20, 21, 27]  # Saturdays, plus the Friday 12th and Sunday 21st weddings
    assert [now.astimezone(tz) for now in rises] == [
        dt.datetime(2026, 6, day, 8, tzinfo=tz) for day in peak_days
    ]
    assert {now.hour for now in rises} == {utc_hour}  # the same local 08:00, another UTC hour
    assert [now.astimezone(tz) for now in falls] == [
        dt.datetime(2026, 6, day, 23, tzinfo=tz) for day in peak_days
    ]
    assert len(found) == 2 * len(peak_days)


def test_the_season_floor_starts_and_ends_at_local_midnight() -> None:
    """The season trigger raises the floor at 00:00 on 1 May and drops it at 00:00 on 1 Nov."""
    document = keda.scaled_object(ADVISOR)
    floor = replica_floor(document, dt.date(2026, 4, 29), dt.date(2026, 11, 2))
    london = ADVISOR.timezone
    may = dt.datetime(2026, 5, 1, tzinfo=london)
    november = dt.datetime(2026, 11, 1, tzinfo=london)
    assert (floor(may - MINUTE), floor(may)) == (2, 6)
    assert (floor(november - MINUTE), floor(november)) == (6, 2)


# --- which weddings get a trigger ----------------------------------------------------------


def test_only_upcoming_uncovered_wedding_days_get_a_trigger() -> None:
    """Past, beyond-horizon and Saturday weddings get none; one trigger per remaining date."""
    document = keda.scaled_object(ADVISOR, weddings=example_weddings(), today=EXAMPLE_TODAY)
    names = [t["name"] for t in triggers(document, "cron")]
    assert names == [
        "wedding-season-05-10",
        "saturday-peak",
        "wedding-day-2026-06-12",
        "wedding-day-2026-06-21",
        "wedding-day-2026-08-14",
    ]


def test_a_wedding_day_trigger_fires_on_its_date_in_local_time() -> None:
    """A wedding day's trigger runs 08:00-23:00 on its day and month in the config's zone."""
    document = keda.scaled_object(ADVISOR, weddings=[dt.date(2026, 6, 12)], today=EXAMPLE_TODAY)
    (wedding,) = [t for t in triggers(document, "cron") if t["name"].startswith("wedding-day")]
    assert wedding["metadata"] == {
        "timezone": "Europe/London",
        "start": "0 8 12 6 *",
        "end": "0 23 12 6 *",
        "desiredReplicas": "20",
    }


def test_an_off_season_wedding_is_raised_above_the_base() -> None:
    """A January Thursday wedding gets a trigger: neither the season nor Saturdays cover it."""
    day = dt.date(2027, 1, 14)
    document = keda.scaled_object(ADVISOR, weddings=[day], today=dt.date(2027, 1, 1))
    assert "wedding-day-2027-01-14" in [t["name"] for t in triggers(document, "cron")]


def test_todays_wedding_keeps_its_trigger() -> None:
    """A wedding on the day of generation is upcoming, so its trigger is kept."""
    today = dt.date(2026, 6, 12)
    document = keda.scaled_object(ADVISOR, weddings=[today], today=today)
    assert "wedding-day-2026-06-12" in [t["name"] for t in triggers(document, "cron")]


def test_the_annotations_say_which_wedding_dates_were_covered() -> None:
    """The object records the generation date and the end of its wedding horizon."""
    document = keda.scaled_object(ADVISOR, weddings=[], today=EXAMPLE_TODAY)
    assert document["metadata"]["annotations"] == {
        "wedsync-otel/weddings-from": "2026-06-01",
        "wedsync-otel/weddings-until": "2026-08-30",
    }


def test_weddings_without_today_are_refused() -> None:
    """Weddings need today's date to drop the past ones."""
    with pytest.raises(ValueError, match="today"):
        keda.scaled_object(ADVISOR, weddings=[dt.date(2026, 6, 12)])


# --- seasons and floors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("months", "runs"),
    [
        (range(5, 11), ((5, 10),)),
        ({11, 12, 1, 2}, ((11, 2),)),
        ({4, 5, 9}, ((4, 5), (9, 9))),
        (set(), ()),
        (range(1, 13), ()),
    ],
)
def test_season_months_become_runs_of_consecutive_months(
    months: set[int], runs: tuple[tuple[int, int], ...]
) -> None:
    """Season months group into runs, wrapping over December; all twelve need no cron."""
    assert keda.season_runs(months) == runs


def test_a_season_over_new_year_ends_on_the_first_of_the_month_after() -> None:
    """A November-February season runs from 00:00 on 1 Nov to 00:00 on 1 Mar."""
    advisor = CapacityAdvisor(
        base_rps=40, instance_rps=25, config=WeddingConfig(season_months=frozenset({11, 12, 1, 2}))
    )
    (season,) = [t for t in triggers(keda.scaled_object(advisor), "cron") if "season" in t["name"]]
    assert (season["metadata"]["start"], season["metadata"]["end"]) == ("0 0 1 11 *", "0 0 1 3 *")


def test_a_year_round_season_is_the_minimum_itself() -> None:
    """With every month in season the season figure is minReplicaCount and has no trigger."""
    advisor = CapacityAdvisor(
        base_rps=40, instance_rps=25, config=WeddingConfig(season_months=frozenset(range(1, 13)))
    )
    document = keda.scaled_object(advisor)
    assert document["spec"]["minReplicaCount"] == 6
    assert not [t for t in triggers(document, "cron") if "season" in t["name"]]


def test_fallback_holds_the_peak_when_prometheus_cannot_be_read() -> None:
    """After three failed reads the request-rate trigger falls back to the peak replica count."""
    fallback = keda.scaled_object(ADVISOR)["spec"]["fallback"]
    assert fallback == {"failureThreshold": 3, "replicas": 20}


def test_a_wedding_horizon_over_a_year_is_refused_up_front() -> None:
    """Options refuse a horizon over 365 days even before any wedding is given."""
    with pytest.raises(ValueError, match="horizon_days"):
        ScalingOptions(horizon_days=400)


def test_a_bad_target_name_is_refused() -> None:
    """A target that is not a Kubernetes name is refused before anything is written."""
    with pytest.raises(ValueError, match="target_name"):
        ScalingOptions(target_name="WedSync API")


# --- rendering and the committed examples --------------------------------------------------


def test_the_rendered_yaml_reads_back_as_the_document() -> None:
    """render_scaled_object writes YAML that parses back to the same document."""
    document = keda.scaled_object(ADVISOR, weddings=example_weddings(), today=EXAMPLE_TODAY)
    text = keda.render_scaled_object(document, ADVISOR)
    assert text.startswith("# KEDA 2.14 ScaledObject")
    assert yaml.safe_load(text) == document


def test_the_summary_counts_what_happened_to_the_weddings() -> None:
    """scaling_summary says how many weddings were upcoming, skipped or given a trigger."""
    weddings = example_weddings()
    document = keda.scaled_object(ADVISOR, weddings=weddings, today=EXAMPLE_TODAY)
    window = wedding_window(weddings, today=EXAMPLE_TODAY)
    summary = keda.scaling_summary(ADVISOR, document, window)
    assert summary["weddings"] == {
        "today": "2026-06-01",
        "horizon_days": 90,
        "upcoming": 4,
        "with_own_trigger": 3,
        "past_skipped": 1,
        "beyond_horizon": 1,
    }
    assert (summary["min_replicas"], summary["max_replicas"]) == (2, 50)


@pytest.mark.parametrize(
    ("path", "weddings", "command"),
    [
        (DEFAULT_FILE, False, "wedsync-otel scaling --out collector-config/keda/scaledobject.yaml"),
        (
            WEDDINGS_FILE,
            True,
            "wedsync-otel scaling --weddings collector-config/keda/weddings.example.csv "
            "--today 2026-06-01 --out collector-config/keda/scaledobject-weddings.yaml",
        ),
    ],
)
def test_committed_examples_match_the_generator(path: Path, weddings: bool, command: str) -> None:
    """The example ScaledObjects in collector-config/keda are what the generator makes now."""
    document = (
        keda.scaled_object(ADVISOR, weddings=example_weddings(), today=EXAMPLE_TODAY)
        if weddings
        else keda.scaled_object(ADVISOR)
    )
    assert path.read_text() == keda.render_scaled_object(document, ADVISOR), (
        f"{path} is stale: regenerate it with `{command}`"
    )
