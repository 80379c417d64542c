"""The request judge (`wedsync_otel.request_judge`): plain attributes and times in, a verdict."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import SATURDAY, TUESDAY, FakeClock
from wedsync_otel import attributes as attr
from wedsync_otel.calendar import ApdexClass, Band, apdex_class
from wedsync_otel.config import WeddingConfig
from wedsync_otel.context import set_wedding_resolver, wedding_context
from wedsync_otel.request_judge import RequestJudge
from wedsync_otel.rules import WeddingRules

NS_PER_MS: Final = 1_000_000
WINTER_SATURDAY: Final = dt.datetime(2026, 1, 3, 12, 0, tzinfo=dt.UTC)
TIMED_KEYS: Final = (attr.WEDDING_DURATION_MS, attr.WEDDING_APDEX, attr.WEDDING_THRESHOLD_BREACHED)
ROUTE_KEYS: Final = ("http.route", "url.path", "http.target")
STATUS_KEYS: Final = ("http.response.status_code", "http.status_code")


def ns(instant: dt.datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime."""
    return int(instant.timestamp()) * 1_000_000_000


TUESDAY_NS: Final = ns(TUESDAY)


@pytest.fixture(scope="module")
def rules() -> WeddingRules:
    return WeddingRules(WeddingConfig.default())


@pytest.fixture
def judge(rules: WeddingRules) -> RequestJudge:
    """A judge without a clock: each span is judged at its own start."""
    return RequestJudge(rules)


@pytest.fixture(autouse=True)
def _no_resolver() -> Iterator[None]:
    set_wedding_resolver(None)
    yield
    set_wedding_resolver(None)


def run(
    judge: RequestJudge,
    attrs: dict[str, Any],
    *,
    start_ns: int | None = TUESDAY_NS,
    duration_ms: float | None = 10.0,
    error_status: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Judge a span starting at ``start_ns`` that lasted ``duration_ms`` (None: no end)."""
    end_ns = None
    if start_ns is not None and duration_ms is not None:
        end_ns = start_ns + round(duration_ms * NS_PER_MS)
    return judge.judge(attrs, start_ns, end_ns, error_status=error_status)


@pytest.mark.parametrize(
    ("attrs", "endpoint"),
    [
        pytest.param({"http.route": "/api/payments/{id}"}, "payments", id="route"),
        pytest.param(
            {"http.route": "/api/rsvp/{rsvp_id}", "url.path": "/api/payments/charge"},
            "rsvp",
            id="route-wins-over-path",
        ),
        pytest.param(
            {"http.route": "/api/rsvp/{rsvp_id}", "http.target": "/api/payments/charge"},
            "rsvp",
            id="route-wins-over-target",
        ),
        pytest.param({"url.path": "/api/payments/charge"}, "payments", id="path-fallback"),
        pytest.param({"http.target": "/api/guest-lists/7"}, "guest_lists", id="target-fallback"),
        pytest.param(
            {"url.path": "/api/rsvp/1", "http.target": "/api/payments/1"},
            "rsvp",
            id="path-before-target",
        ),
        pytest.param(
            {"http.route": 42, "url.path": "/api/payments/x"}, "payments", id="int-route-ignored"
        ),
        pytest.param(
            {"http.route": b"/api/rsvp", "url.path": "/api/payments/x"},
            "payments",
            id="bytes-route-ignored",
        ),
        pytest.param(
            {"http.route": None, "url.path": 7, "http.target": "/api/rsvp/r1"},
            "rsvp",
            id="none-route-int-path-ignored",
        ),
        pytest.param({"http.route": True}, "other", id="only-a-bool-route"),
        pytest.param(
            {"http.target": "/api/payments/charge?wedding_id=5"}, "payments", id="query-ignored"
        ),
        pytest.param(
            {"url.path": "/api/suppliers/s1/profile?tab=photos#top"},
            "supplier_profiles",
            id="query-and-fragment-ignored",
        ),
        pytest.param(
            {"http.target": "/healthz?next=/api/payments/charge"}, "other", id="query-never-claims"
        ),
        pytest.param({"http.route": "/healthz"}, "other", id="unknown-route"),
        pytest.param({}, "other", id="no-route"),
    ],
)
def test_route_table(judge: RequestJudge, attrs: dict[str, Any], endpoint: str) -> None:
    """The endpoint comes from http.route, else url.path, else http.target, as str only."""
    verdict, marks = run(judge, attrs)
    assert verdict.judgement.endpoint == endpoint
    assert marks[attr.WEDDING_ENDPOINT] == endpoint


@pytest.mark.parametrize(
    ("attrs", "error_status", "status_code", "failed"),
    [
        pytest.param({"http.response.status_code": 200}, False, 200, False, id="200"),
        pytest.param({"http.response.status_code": 503}, False, 503, True, id="503"),
        pytest.param({"http.response.status_code": "503"}, False, 503, True, id="503-text"),
        pytest.param({"http.response.status_code": 500}, False, 500, True, id="500"),
        pytest.param({"http.response.status_code": 599}, False, 599, True, id="599"),
        pytest.param({"http.response.status_code": 600}, False, 600, False, id="600"),
        pytest.param({"http.response.status_code": 404}, False, 404, False, id="404"),
        pytest.param({"http.response.status_code": "404"}, False, 404, False, id="404-text"),
        pytest.param({"http.response.status_code": 499}, False, 499, False, id="499"),
        pytest.param({"http.status_code": 502}, False, 502, True, id="old-name"),
        pytest.param(
            {"http.response.status_code": 200, "http.status_code": 500},
            False,
            200,
            False,
            id="new-name-wins",
        ),
        pytest.param({"http.response.status_code": True}, False, None, False, id="bool-no-status"),
        pytest.param({"http.response.status_code": 503.0}, False, None, False, id="float"),
        pytest.param({"http.response.status_code": "5030"}, False, None, False, id="4-digits"),
        pytest.param({"http.response.status_code": " 503"}, False, None, False, id="padded"),
        pytest.param({"http.response.status_code": "50x"}, False, None, False, id="not-digits"),
        pytest.param({}, False, None, False, id="none"),
        pytest.param({}, True, None, True, id="error-status"),
        pytest.param({"http.response.status_code": 200}, True, 200, True, id="error-status-200"),
        pytest.param({"http.response.status_code": 404}, True, 404, True, id="error-status-404"),
    ],
)
def test_status_table(
    judge: RequestJudge,
    attrs: dict[str, Any],
    error_status: bool,
    status_code: int | None,
    failed: bool,
) -> None:
    """A 5xx status or an ERROR span status fails the request; a 4xx or a bool does not."""
    verdict, marks = run(judge, attrs, duration_ms=1.0, error_status=error_status)
    assert (verdict.status_code, verdict.failed) == (status_code, failed)
    expected = ApdexClass.FRUSTRATED if failed else ApdexClass.SATISFIED
    assert (verdict.apdex, marks[attr.WEDDING_APDEX]) == (expected, expected.value)


def test_a_status_of_superscript_digits_is_no_status(judge: RequestJudge) -> None:
    """Three characters that str.isdigit() accepts but int() refuses are no status, not a raise."""
    verdict, _ = run(judge, {"http.response.status_code": "²³⁴"})
    assert verdict.status_code is None


@pytest.mark.parametrize(
    ("wedding_date", "band", "days"),
    [
        pytest.param("2026-06-16", Band.WEDDING_DAY, 0, id="today"),
        pytest.param("2026-06-21", Band.FINAL_WEEK, 5, id="five-days"),
        pytest.param("2026-07-10", Band.FINAL_MONTH, 24, id="24-days"),
        pytest.param("2026-12-25", Band.PLANNING, 192, id="planning"),
        pytest.param("2026-06-01", Band.PAST, -15, id="past"),
        pytest.param(dt.date(2026, 6, 17), Band.FINAL_WEEK, 1, id="a-date-object"),
    ],
)
def test_a_wedding_date_gives_band_and_days_until(
    judge: RequestJudge, wedding_date: object, band: Band, days: int
) -> None:
    """wedding.date, seen from the span's day (a Tuesday, 16 June 2026), sets band and days."""
    verdict, marks = run(judge, {attr.WEDDING_DATE: wedding_date})
    assert (verdict.judgement.band, verdict.days_until) == (band, days)
    assert marks[attr.WEDDING_PROXIMITY] == band.value
    assert marks[attr.WEDDING_DAYS_UNTIL] == days
    assert judge.bad_date.count == 0


@pytest.mark.parametrize(
    "wedding_date",
    [
        pytest.param("2026-13-01", id="month-13"),
        pytest.param("2026-02-30", id="30-february"),
        pytest.param("16/06/2026", id="not-iso"),
        pytest.param("2026-W25-6", id="week-date"),
        pytest.param("2026-06-16T00:00", id="a-time-too"),
        pytest.param("", id="empty"),
        pytest.param(20260616, id="an-int"),
        pytest.param(True, id="a-bool"),
        pytest.param(dt.datetime(2026, 6, 16, tzinfo=dt.UTC), id="a-datetime"),
    ],
)
def test_an_unusable_wedding_date_is_counted_and_leaves_the_band_unknown(
    judge: RequestJudge, wedding_date: object
) -> None:
    """A wedding.date that is no ISO date gives band unknown, no days_until, one count."""
    verdict, marks = run(judge, {attr.WEDDING_DATE: wedding_date, attr.WEDDING_ID: "w-1"})
    assert (verdict.judgement.band, verdict.days_until) == (Band.UNKNOWN, None)
    assert marks[attr.WEDDING_PROXIMITY] == Band.UNKNOWN.value
    assert attr.WEDDING_DAYS_UNTIL not in marks
    assert judge.bad_date.count == 1


def test_no_wedding_at_all_is_unknown_and_not_counted(judge: RequestJudge) -> None:
    """A span naming no wedding is band unknown and counts nothing as bad."""
    verdict, marks = run(judge, {"http.route": "/api/payments/charge"})
    assert verdict.judgement.band is Band.UNKNOWN
    assert attr.WEDDING_DAYS_UNTIL not in marks
    assert (judge.bad_date.count, judge.bad_id.count) == (0, 0)


def test_a_wedding_id_is_resolved_through_the_registered_resolver(judge: RequestJudge) -> None:
    """With a resolver's answer cached, wedding.id alone gives the wedding's band and days."""
    set_wedding_resolver({"w-9": dt.date(2026, 6, 21)}.get, timeout_ms=60_000)
    with wedding_context(wedding_id="w-9") as wedding:  # waits for the lookup: now cached
        assert wedding.wedding_date == dt.date(2026, 6, 21)
    verdict, marks = run(judge, {attr.WEDDING_ID: "w-9"})
    assert (verdict.judgement.band, verdict.days_until) == (Band.FINAL_WEEK, 5)
    assert marks[attr.WEDDING_DAYS_UNTIL] == 5


def test_a_wedding_date_wins_over_a_resolved_id(judge: RequestJudge) -> None:
    """When a span carries both, its own wedding.date decides, not the resolver."""
    set_wedding_resolver({"w-9": dt.date(2026, 6, 21)}.get, timeout_ms=60_000)
    with wedding_context(wedding_id="w-9"):
        pass
    verdict, _ = run(judge, {attr.WEDDING_ID: "w-9", attr.WEDDING_DATE: "2026-06-16"})
    assert verdict.judgement.band is Band.WEDDING_DAY


def test_a_wedding_id_without_a_resolver_is_unknown_not_counted(judge: RequestJudge) -> None:
    """A usable id with no resolver registered leaves the band unknown without a bad count."""
    verdict, _ = run(judge, {attr.WEDDING_ID: "w-9"})
    assert verdict.judgement.band is Band.UNKNOWN
    assert judge.bad_id.count == 0


@pytest.mark.parametrize(
    "wedding_id",
    [
        pytest.param("", id="empty"),
        pytest.param("w\n1", id="control-character"),
        pytest.param("w" * 129, id="too-long"),
        pytest.param(True, id="a-bool"),
        pytest.param(1.5, id="a-float"),
        pytest.param(10**200, id="a-huge-int"),
    ],
)
def test_an_unusable_wedding_id_is_counted(judge: RequestJudge, wedding_id: object) -> None:
    """A wedding.id that is no id is counted in bad_id and leaves the band unknown."""
    verdict, _ = run(judge, {attr.WEDDING_ID: wedding_id})
    assert verdict.judgement.band is Band.UNKNOWN
    assert judge.bad_id.count == 1


@pytest.mark.parametrize(
    ("start", "saturday", "season"),
    [
        pytest.param(TUESDAY, False, True, id="june-tuesday"),
        pytest.param(SATURDAY, True, True, id="june-saturday"),
        pytest.param(WINTER_SATURDAY, True, False, id="january-saturday"),
        # 23:30 UTC on Friday 19 June is 00:30 on Saturday in London (BST).
        pytest.param(
            dt.datetime(2026, 6, 19, 23, 30, tzinfo=dt.UTC), True, True, id="london-saturday"
        ),
    ],
)
def test_without_a_clock_the_span_start_decides_the_day(
    judge: RequestJudge, start: dt.datetime, saturday: bool, season: bool
) -> None:
    """With no clock, the span's own start, in the platform zone, sets Saturday and season."""
    verdict, marks = run(judge, {}, start_ns=ns(start))
    assert (verdict.judgement.saturday, verdict.judgement.season) == (saturday, season)
    assert (marks[attr.WEDDING_SATURDAY], marks[attr.WEDDING_SEASON]) == (saturday, season)


def test_a_saturday_start_tightens_a_critical_threshold(judge: RequestJudge) -> None:
    """A payments request starting on a Saturday gets the wedding-day threshold (75 ms)."""
    verdict, marks = run(judge, {"http.route": "/api/payments/charge"}, start_ns=ns(SATURDAY))
    assert verdict.judgement.threshold_ms == marks[attr.WEDDING_THRESHOLD_MS] == 75


def test_with_a_clock_the_clock_decides_the_day(rules: WeddingRules) -> None:
    """With a clock, its now sets Saturday, season and proximity, not the span's start."""
    judge = RequestJudge(rules, clock=FakeClock(TUESDAY))
    verdict, marks = run(judge, {attr.WEDDING_DATE: "2026-06-21"}, start_ns=ns(WINTER_SATURDAY))
    assert (verdict.judgement.saturday, verdict.judgement.season) == (False, True)
    assert verdict.days_until == marks[attr.WEDDING_DAYS_UNTIL] == 5


def test_with_a_clock_an_instant_off_the_calendar_is_not_counted(rules: WeddingRules) -> None:
    """A clock decides the day, so a start time off the calendar is never read for it."""
    judge = RequestJudge(rules, clock=FakeClock(SATURDAY))
    verdict, _ = run(judge, {}, start_ns=10**30)
    assert verdict.judgement.saturday is True
    assert judge.bad_time.count == 0


@pytest.mark.parametrize("start_ns", [10**30, -(10**30)])
def test_an_instant_off_the_calendar_is_judged_now_and_counted(
    judge: RequestJudge, rules: WeddingRules, start_ns: int
) -> None:
    """A start no calendar holds is judged on today's day, counted in bad_time, never raised."""
    before = rules.calendar.day_of(time.time_ns())
    verdict, marks = run(judge, {}, start_ns=start_ns, duration_ms=5.0)
    after = rules.calendar.day_of(time.time_ns())
    assert (verdict.judgement.saturday, verdict.judgement.season) in {before.kind, after.kind}
    assert judge.bad_time.count == 1
    assert marks[attr.WEDDING_DURATION_MS] == 5.0  # the duration is still usable


@pytest.mark.parametrize(
    ("start_ns", "end_ns"),
    [
        pytest.param(TUESDAY_NS, None, id="no-end"),
        pytest.param(None, TUESDAY_NS, id="no-start"),
        pytest.param(TUESDAY_NS, TUESDAY_NS - 1, id="end-before-start"),
    ],
)
def test_no_usable_duration_is_frustrated_without_timed_marks(
    judge: RequestJudge, start_ns: int | None, end_ns: int | None
) -> None:
    """Without a usable duration: NaN, frustrated, no duration/Apdex/breach marks, one count."""
    verdict, marks = judge.judge({}, start_ns, end_ns, error_status=False)
    assert math.isnan(verdict.duration_ms)
    assert verdict.apdex is ApdexClass.FRUSTRATED
    assert not set(TIMED_KEYS) & marks.keys()
    assert marks[attr.WEDDING_THRESHOLD_MS] == verdict.judgement.threshold_ms
    assert judge.bad_duration.count == 1


def test_a_zero_duration_is_usable(judge: RequestJudge) -> None:
    """A span that ends the instant it starts lasted 0 ms: satisfied, not counted as bad."""
    verdict, marks = judge.judge({}, TUESDAY_NS, TUESDAY_NS, error_status=False)
    assert verdict.duration_ms == marks[attr.WEDDING_DURATION_MS] == 0.0
    assert marks[attr.WEDDING_APDEX] == ApdexClass.SATISFIED.value
    assert judge.bad_duration.count == 0


@pytest.mark.parametrize(
    ("duration_ms", "breached", "apdex"),
    [
        pytest.param(200.0, False, ApdexClass.SATISFIED, id="at-T"),
        pytest.param(200.000001, True, ApdexClass.TOLERATING, id="just-over-T"),
        pytest.param(800.0, True, ApdexClass.TOLERATING, id="at-4T"),
        pytest.param(800.000001, True, ApdexClass.FRUSTRATED, id="just-over-4T"),
    ],
)
def test_breach_and_apdex_at_the_threshold_edges(
    judge: RequestJudge, duration_ms: float, breached: bool, apdex: ApdexClass
) -> None:
    """Against T = 200 ms (other, Tuesday): T itself satisfies, over 4T frustrates."""
    verdict, marks = run(judge, {}, duration_ms=duration_ms)
    assert marks[attr.WEDDING_THRESHOLD_MS] == 200
    assert marks[attr.WEDDING_THRESHOLD_BREACHED] is breached
    assert (verdict.apdex, marks[attr.WEDDING_APDEX]) == (apdex, apdex.value)


def test_a_duration_too_long_for_a_float_is_counted_not_raised(judge: RequestJudge) -> None:
    """End and start times whose difference no float holds are no usable duration."""
    verdict, _ = judge.judge({}, 0, 10**400, error_status=False)
    assert math.isnan(verdict.duration_ms)
    assert judge.bad_duration.count == 1


def test_a_span_without_times_is_judged_now_not_in_1970(judge: RequestJudge) -> None:
    """No start and no end: judged on today's calendar (a wedding far off is planning, not past)."""
    today = dt.datetime.now(dt.UTC).date()
    wedding = (today + dt.timedelta(days=400)).isoformat()
    verdict, marks = judge.judge({attr.WEDDING_DATE: wedding}, None, None, error_status=False)
    assert verdict.days_until is not None
    assert 398 <= verdict.days_until <= 401
    assert marks[attr.WEDDING_PROXIMITY] == Band.PLANNING.value


routes = st.sampled_from(
    ["/api/payments/charge", "/api/rsvp/1", "/api/suppliers/s1/profile", "/healthz", "/"]
)
statuses = st.one_of(st.none(), st.integers(100, 599), st.booleans(), st.sampled_from(["503"]))


@given(
    route=routes,
    start=st.sampled_from([TUESDAY, SATURDAY, WINTER_SATURDAY]),
    duration_ns=st.one_of(st.none(), st.integers(-(10**9), 10**13)),
    status=statuses,
    error_status=st.booleans(),
    wedding_date=st.sampled_from([None, "2026-06-16", "2026-06-20", "2026-07-01", "2025-01-01"]),
)
def test_the_verdict_and_marks_agree_with_the_one_apdex_rule(
    rules: WeddingRules,
    route: str,
    start: dt.datetime,
    duration_ns: int | None,
    status: object,
    error_status: bool,
    wedding_date: str | None,
) -> None:
    """Verdict Apdex is apdex_class(duration, T, failed); the marks say the same as the verdict."""
    attrs: dict[str, Any] = {"http.route": route, "http.response.status_code": status}
    if wedding_date is not None:
        attrs[attr.WEDDING_DATE] = wedding_date
    start_ns = ns(start)
    end_ns = None if duration_ns is None else start_ns + duration_ns
    verdict, marks = RequestJudge(rules).judge(attrs, start_ns, end_ns, error_status=error_status)
    judgement = verdict.judgement
    server_error = (type(status) is int and 500 <= status <= 599) or status == "503"
    failed = error_status or server_error
    assert verdict.failed is failed
    assert verdict.apdex is apdex_class(verdict.duration_ms, judgement.threshold_ms, failed=failed)
    assert verdict.apdex is judgement.apdex(verdict.duration_ms, failed=failed)
    assert marks[attr.WEDDING_THRESHOLD_MS] == judgement.threshold_ms
    if end_ns is None or end_ns < start_ns:
        assert math.isnan(verdict.duration_ms)
        assert not set(TIMED_KEYS) & marks.keys()
    else:
        assert verdict.duration_ms == marks[attr.WEDDING_DURATION_MS] == (end_ns - start_ns) / 1e6
        assert marks[attr.WEDDING_APDEX] == verdict.apdex.value
        assert marks[attr.WEDDING_THRESHOLD_BREACHED] is judgement.breached(verdict.duration_ms)
        assert marks[attr.WEDDING_THRESHOLD_BREACHED] is (
            verdict.duration_ms > judgement.threshold_ms
        )


attribute_values = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
attribute_keys = st.one_of(
    st.sampled_from([*ROUTE_KEYS, *STATUS_KEYS, attr.WEDDING_DATE, attr.WEDDING_ID]), st.text()
)


@given(
    attrs=st.dictionaries(attribute_keys, attribute_values, max_size=8),
    start_ns=st.one_of(st.none(), st.integers(-(2**80), 2**80)),
    duration_ns=st.one_of(st.none(), st.integers(-(10**12), 10**15)),
    error_status=st.booleans(),
)
def test_judge_never_raises_on_arbitrary_attributes(
    rules: WeddingRules,
    attrs: dict[str, Any],
    start_ns: int | None,
    duration_ns: int | None,
    error_status: bool,
) -> None:
    """Whatever the attributes and times hold, judge returns a verdict and contract marks."""
    end_ns = None if start_ns is None or duration_ns is None else start_ns + duration_ns
    verdict, marks = RequestJudge(rules).judge(attrs, start_ns, end_ns, error_status=error_status)
    assert set(marks) <= set(attr.ENRICHMENT_ATTRIBUTES)
    assert marks[attr.WEDDING_ENDPOINT] == verdict.judgement.endpoint
    assert marks[attr.WEDDING_PROXIMITY] == verdict.judgement.band.value
    assert (attr.WEDDING_DAYS_UNTIL in marks) is (verdict.days_until is not None)
    assert (attr.WEDDING_APDEX in marks) is not math.isnan(verdict.duration_ms)
