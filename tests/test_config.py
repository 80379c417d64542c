"""Tests for wedsync_otel.config: defaults, validation, TOML files and environment precedence."""

from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wedsync_otel
from wedsync_otel import BandMultipliers, ConfigError, EndpointSpec, WeddingConfig, load_config
from wedsync_otel._settings import Setting
from wedsync_otel.calendar import Band
from wedsync_otel.config import CONFIG_FILE_ENV, DEFAULT_ENDPOINTS, PRIVACY_SETTINGS, SETTINGS
from wedsync_otel.export_tuning import EXPORT_SETTINGS, ExportSettings, ExportTuning
from wedsync_otel.privacy.scrubber import PrivacyPolicy


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wedsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def endpoint(name: str, *patterns: str, threshold_ms: float = 100.0) -> EndpointSpec:
    return EndpointSpec(name=name, patterns=patterns, threshold_ms=threshold_ms)


def assert_one_config_error(excinfo: pytest.ExceptionInfo[ConfigError], key: str) -> None:
    """The error is a single ConfigError naming ``key`` in a one-line message."""
    error = excinfo.value
    message = str(error)
    assert type(error) is ConfigError
    assert error.key == key
    assert message.startswith(f"{key}: ")
    assert "\n" not in message
    assert "\r" not in message
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


PAYMENTS = '[endpoints.payments]\npatterns = ["/api/payments/**"]\ncritical = true\n'


# --- defaults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "Europe/London"),
        ("saturday_mode", True),
        ("season_months", frozenset({5, 6, 7, 8, 9, 10})),
        ("default_threshold_ms", 200.0),
        ("critical_wedding_day_cap_ms", 100.0),
        ("trust_baggage", False),
        ("trust_forwarded_client", False),
        ("bands", BandMultipliers()),
        ("endpoints", DEFAULT_ENDPOINTS),
    ],
)
def test_default_settings(field: str, value: object) -> None:
    """A default WeddingConfig has the WedSync settings."""
    assert getattr(WeddingConfig(), field) == value


@pytest.mark.parametrize(
    ("band", "multiplier"),
    [
        (Band.PLANNING, 1.0),
        (Band.FINAL_MONTH, 1.0),
        (Band.FINAL_WEEK, 0.75),
        (Band.WEDDING_DAY, 0.5),
        (Band.PAST, 1.0),
        (Band.UNKNOWN, 1.0),
    ],
)
def test_default_band_multipliers(band: Band, multiplier: float) -> None:
    """Each band's default multiplier is the contract's."""
    assert BandMultipliers().for_band(band) == multiplier


def test_default_classmethod_is_the_default() -> None:
    """WeddingConfig.default() equals WeddingConfig()."""
    assert WeddingConfig.default() == WeddingConfig()


def test_config_is_frozen() -> None:
    """A WeddingConfig cannot be changed in place."""
    config = WeddingConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timezone = "UTC"  # type: ignore[misc]


def test_config_is_keyword_only() -> None:
    """A WeddingConfig refuses positional arguments."""
    with pytest.raises(TypeError):
        WeddingConfig("UTC")  # type: ignore[call-arg]


def test_replace_changes_a_field() -> None:
    """replace() returns a copy with the change."""
    assert WeddingConfig().replace(timezone="UTC").timezone == "UTC"


def test_replace_validates_again() -> None:
    """replace() with a bad value raises the same ConfigError as construction."""
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig().replace(default_threshold_ms=-1)
    assert_one_config_error(excinfo, "default_threshold_ms")


def test_config_error_is_exported_and_a_value_error() -> None:
    """ConfigError is the package's public exception and a ValueError."""
    assert wedsync_otel.ConfigError is ConfigError
    assert issubclass(ConfigError, ValueError)


def test_config_error_carries_key_and_problem() -> None:
    """A ConfigError keeps its key and problem apart and joins them in its message."""
    error = ConfigError("bands.final_week", "must be positive")
    assert (error.key, error.problem, str(error)) == (
        "bands.final_week",
        "must be positive",
        "bands.final_week: must be positive",
    )


# --- validation of a directly built config ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", id="unknown-zone"),
        pytest.param({"timezone": ""}, "timezone", id="empty-zone"),
        pytest.param({"timezone": "../../etc/passwd"}, "timezone", id="path-zone"),
        pytest.param({"timezone": "Europe"}, "timezone", id="zone-directory"),
        pytest.param({"timezone": 0}, "timezone", id="zone-not-a-string"),
        pytest.param({"season_months": frozenset({13})}, "season_months", id="month-13"),
        pytest.param({"season_months": frozenset({0, 5})}, "season_months", id="month-0"),
        pytest.param({"season_months": frozenset({-1})}, "season_months", id="month-negative"),
        pytest.param({"season_months": frozenset({5.0})}, "season_months", id="month-float"),
        pytest.param({"season_months": frozenset({True})}, "season_months", id="month-bool"),
        pytest.param({"season_months": {5, 6}}, "season_months", id="months-not-frozen"),
        pytest.param({"season_months": frozenset({5, "June"})}, "season_months", id="months-mixed"),
        pytest.param({"default_threshold_ms": -1}, "default_threshold_ms", id="threshold-negative"),
        pytest.param({"default_threshold_ms": 0}, "default_threshold_ms", id="threshold-zero"),
        pytest.param(
            {"default_threshold_ms": math.nan}, "default_threshold_ms", id="threshold-nan"
        ),
        pytest.param(
            {"default_threshold_ms": math.inf}, "default_threshold_ms", id="threshold-inf"
        ),
        pytest.param({"default_threshold_ms": "200"}, "default_threshold_ms", id="threshold-text"),
        pytest.param({"default_threshold_ms": True}, "default_threshold_ms", id="threshold-bool"),
        pytest.param(
            {"default_threshold_ms": 10**400}, "default_threshold_ms", id="threshold-huge-int"
        ),
        pytest.param(
            {"critical_wedding_day_cap_ms": 0}, "critical_wedding_day_cap_ms", id="cap-zero"
        ),
        pytest.param({"saturday_mode": "yes"}, "saturday_mode", id="saturday-text"),
        pytest.param({"trust_baggage": 1}, "trust_baggage", id="trust-int"),
        pytest.param(
            {"trust_forwarded_client": "yes"}, "trust_forwarded_client", id="forwarded-text"
        ),
        pytest.param({"trust_forwarded_client": 1}, "trust_forwarded_client", id="forwarded-int"),
        pytest.param(
            {"bands": BandMultipliers(final_week=-0.5)}, "bands.final_week", id="band-negative"
        ),
        pytest.param(
            {"bands": BandMultipliers(wedding_day=math.nan)}, "bands.wedding_day", id="band-nan"
        ),
        pytest.param({"bands": BandMultipliers(past=0)}, "bands.past", id="band-zero"),
        pytest.param(
            {"endpoints": (endpoint("payments", "/p"), endpoint("payments", "/q"))},
            "endpoints.payments",
            id="duplicate-endpoint",
        ),
        pytest.param(
            {"endpoints": (endpoint("a", "/a/{x}"), endpoint("b", "/a/{y}"))},
            "endpoints.b.patterns",
            id="same-shape",
        ),
        pytest.param(
            {"endpoints": (endpoint("a", "/a/{x}/**"), endpoint("b", "/a/{y}/**/"))},
            "endpoints.b.patterns",
            id="same-glob-shape",
        ),
        pytest.param(
            {"endpoints": (endpoint("payments", "/p", threshold_ms=-5),)},
            "endpoints.payments.threshold_ms",
            id="endpoint-threshold-negative",
        ),
        pytest.param(
            {"endpoints": (endpoint("payments", "/p", threshold_ms="fast"),)},  # type: ignore[arg-type]
            "endpoints.payments.threshold_ms",
            id="endpoint-threshold-text",
        ),
        pytest.param(
            {"endpoints": (endpoint("other", "/o"),)}, "endpoints.other", id="reserved-name"
        ),
        pytest.param(
            {"endpoints": (endpoint("Pay Ments", "/p"),)}, "endpoints.Pay Ments", id="bad-name"
        ),
        pytest.param({"endpoints": (endpoint("a"),)}, "endpoints.a.patterns", id="no-patterns"),
        pytest.param(
            {"endpoints": (endpoint("a", "a/b"),)}, "endpoints.a.patterns", id="bad-pattern"
        ),
        pytest.param(
            {"endpoints": (EndpointSpec(name="a", patterns=("/a",), threshold_ms=1, critical=1),)},  # type: ignore[arg-type]
            "endpoints.a.critical",
            id="critical-int",
        ),
        pytest.param(
            {
                "endpoints": (
                    EndpointSpec(
                        name="a",
                        patterns=("/a",),
                        threshold_ms=1,
                        wedding_id_from_query="yes",  # type: ignore[arg-type]
                    ),
                )
            },
            "endpoints.a.wedding_id_from_query",
            id="from-query-text",
        ),
        pytest.param({"endpoints": [endpoint("a", "/a")]}, "endpoints", id="endpoints-not-a-tuple"),
    ],
)
def test_invalid_config_raises_one_config_error(changes: dict[str, Any], key: str) -> None:
    """Each invalid setting raises one one-line ConfigError naming its key."""
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig(**changes)
    assert_one_config_error(excinfo, key)


def test_same_endpoint_may_repeat_a_shape() -> None:
    """One endpoint listing two patterns of the same shape is not a conflict."""
    config = WeddingConfig(endpoints=(endpoint("a", "/a/{x}", "/a/{y}"),))
    assert config.endpoints[0].patterns == ("/a/{x}", "/a/{y}")


def test_overlapping_but_different_shapes_are_allowed() -> None:
    """A glob and a more specific template in different endpoints are both kept."""
    config = WeddingConfig(endpoints=(endpoint("a", "/a/**"), endpoint("b", "/a/{id}")))
    assert [s.name for s in config.endpoints] == ["a", "b"]


def test_empty_catalogue_is_allowed() -> None:
    """A config without endpoints classifies everything as other."""
    assert WeddingConfig(endpoints=()).endpoints == ()


# --- TOML files -----------------------------------------------------------------------------------

FULL_FILE = """\
timezone = "America/New_York"
saturday_mode = false
season_months = [6, 7, 8]
default_threshold_ms = 250
critical_wedding_day_cap_ms = 80.5
trust_baggage = true

[bands]
final_week = 0.8
wedding_day = 0.4

[endpoints.checkout]
patterns = ["/shop/checkout/**", "/shop/{shop_id}/pay"]
threshold_ms = 120
critical = true

[endpoints.search]
patterns = ["/search"]
threshold_ms = 900.5
"""


def test_from_file_reads_every_setting(tmp_path: Path) -> None:
    """A file setting every key gives exactly those values."""
    config = WeddingConfig.from_file(write(tmp_path, FULL_FILE))
    assert config == WeddingConfig(
        timezone="America/New_York",
        saturday_mode=False,
        season_months=frozenset({6, 7, 8}),
        default_threshold_ms=250.0,
        critical_wedding_day_cap_ms=80.5,
        trust_baggage=True,
        bands=BandMultipliers(final_week=0.8, wedding_day=0.4),
        endpoints=(
            EndpointSpec(
                name="checkout",
                patterns=("/shop/checkout/**", "/shop/{shop_id}/pay"),
                threshold_ms=120.0,
                critical=True,
            ),
            EndpointSpec(name="search", patterns=("/search",), threshold_ms=900.5),
        ),
    )


def test_from_file_accepts_a_string_path(tmp_path: Path) -> None:
    """from_file takes a str as well as a Path."""
    path = write(tmp_path, 'timezone = "UTC"\n')
    assert WeddingConfig.from_file(str(path)).timezone == "UTC"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    """An empty file changes nothing."""
    assert WeddingConfig.from_file(write(tmp_path, "")) == WeddingConfig()


def test_file_endpoints_replace_the_catalogue(tmp_path: Path) -> None:
    """A file with [endpoints] replaces the default catalogue instead of adding to it."""
    config = WeddingConfig.from_file(write(tmp_path, PAYMENTS + "threshold_ms = 90\n"))
    assert config.endpoints == (
        EndpointSpec(
            name="payments", patterns=("/api/payments/**",), threshold_ms=90.0, critical=True
        ),
    )


def test_empty_endpoints_table_empties_the_catalogue(tmp_path: Path) -> None:
    """An empty [endpoints] table replaces the catalogue with nothing."""
    assert WeddingConfig.from_file(write(tmp_path, "[endpoints]\n")).endpoints == ()


def test_file_without_endpoints_keeps_the_catalogue(tmp_path: Path) -> None:
    """A file without [endpoints] keeps the default catalogue."""
    config = WeddingConfig.from_file(write(tmp_path, 'timezone = "UTC"\n'))
    assert config.endpoints == DEFAULT_ENDPOINTS


def test_omitted_bands_keep_their_defaults(tmp_path: Path) -> None:
    """A [bands] table setting one band leaves the others at their defaults."""
    config = WeddingConfig.from_file(write(tmp_path, "[bands]\nplanning = 1.25\n"))
    assert config.bands == BandMultipliers(planning=1.25)


def test_endpoint_query_ids_default_to_off(tmp_path: Path) -> None:
    """An endpoint that omits wedding_id_from_query takes wedding ids from the path only."""
    text = '[endpoints.search]\npatterns = ["/search"]\nthreshold_ms = 300\n'
    assert (
        WeddingConfig.from_file(write(tmp_path, text)).endpoints[0].wedding_id_from_query is False
    )


def test_endpoint_may_take_wedding_ids_from_the_query(tmp_path: Path) -> None:
    """wedding_id_from_query = true in an endpoint's table is read."""
    text = PAYMENTS + "threshold_ms = 150\nwedding_id_from_query = true\n"
    (payments,) = WeddingConfig.from_file(write(tmp_path, text)).endpoints
    assert payments.wedding_id_from_query is True


def test_unknown_endpoint_key_lists_every_known_key(tmp_path: Path) -> None:
    """The error for an unknown endpoint key names the keys an endpoint table may hold."""
    text = PAYMENTS + "threshold_ms = 150\nwedding_id_from_querystring = true\n"
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig.from_file(write(tmp_path, text))
    assert_one_config_error(excinfo, "endpoints.payments.wedding_id_from_querystring")
    assert excinfo.value.problem == (
        "unknown key (known: critical, patterns, threshold_ms, wedding_id_from_query)"
    )


def test_trust_forwarded_client_is_read_from_the_file(tmp_path: Path) -> None:
    """trust_forwarded_client = true in the file is read."""
    config = WeddingConfig.from_file(write(tmp_path, "trust_forwarded_client = true\n"))
    assert config.trust_forwarded_client is True


def test_endpoint_critical_defaults_to_false(tmp_path: Path) -> None:
    """An endpoint that omits critical is not critical."""
    text = '[endpoints.search]\npatterns = ["/search"]\nthreshold_ms = 300\n'
    assert WeddingConfig.from_file(write(tmp_path, text)).endpoints[0].critical is False


def test_integer_thresholds_become_floats(tmp_path: Path) -> None:
    """A whole-number threshold in the file is read as a float."""
    config = WeddingConfig.from_file(write(tmp_path, "default_threshold_ms = 300\n"))
    assert type(config.default_threshold_ms) is float


def test_from_mapping_builds_the_same_config(tmp_path: Path) -> None:
    """from_mapping of a parsed document gives what from_file gives for the file."""
    assert WeddingConfig.from_mapping(tomllib.loads(FULL_FILE)) == WeddingConfig.from_file(
        write(tmp_path, FULL_FILE)
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        pytest.param('timezon = "Europe/London"\n', "timezon", id="unknown-key"),
        pytest.param("[bands]\nhoneymoon = 1.0\n", "bands.honeymoon", id="unknown-band"),
        pytest.param(
            PAYMENTS + "threshold_ms = 100\nlatency = 3\n",
            "endpoints.payments.latency",
            id="unknown-endpoint-key",
        ),
        pytest.param(
            PAYMENTS + "threshold_ms = -5\n",
            "endpoints.payments.threshold_ms",
            id="negative-threshold",
        ),
        pytest.param(
            PAYMENTS + "threshold_ms = 0\n", "endpoints.payments.threshold_ms", id="zero-threshold"
        ),
        pytest.param(
            PAYMENTS + 'threshold_ms = "fast"\n',
            "endpoints.payments.threshold_ms",
            id="text-threshold",
        ),
        pytest.param(
            PAYMENTS + "threshold_ms = true\n",
            "endpoints.payments.threshold_ms",
            id="bool-threshold",
        ),
        pytest.param(
            PAYMENTS + "threshold_ms = nan\n", "endpoints.payments.threshold_ms", id="nan-threshold"
        ),
        pytest.param(
            PAYMENTS + "threshold_ms = inf\n", "endpoints.payments.threshold_ms", id="inf-threshold"
        ),
        pytest.param(
            PAYMENTS + "threshold_ms = 1" + "0" * 400 + "\n",
            "endpoints.payments.threshold_ms",
            id="huge-integer-threshold",
        ),
        pytest.param(
            "[endpoints.payments]\nthreshold_ms = 100\n",
            "endpoints.payments.patterns",
            id="missing-patterns",
        ),
        pytest.param(PAYMENTS, "endpoints.payments.threshold_ms", id="missing-threshold"),
        pytest.param(
            '[endpoints.payments]\npatterns = "/api/payments/**"\nthreshold_ms = 100\n',
            "endpoints.payments.patterns",
            id="patterns-not-a-list",
        ),
        pytest.param(
            "[endpoints.payments]\npatterns = []\nthreshold_ms = 100\n",
            "endpoints.payments.patterns",
            id="no-patterns",
        ),
        pytest.param(
            '[endpoints.payments]\npatterns = ["api/payments"]\nthreshold_ms = 100\n',
            "endpoints.payments.patterns",
            id="bad-pattern",
        ),
        pytest.param(
            '[endpoints.payments]\npatterns = ["/p"]\nthreshold_ms = 100\ncritical = "yes"\n',
            "endpoints.payments.critical",
            id="critical-text",
        ),
        pytest.param(
            PAYMENTS + "threshold_ms = 100\n" + PAYMENTS + "threshold_ms = 200\n",
            "endpoints.payments",
            id="duplicate-endpoint",
        ),
        pytest.param(
            '[endpoints.a]\npatterns = ["/a/{x}"]\nthreshold_ms = 100\n'
            '[endpoints.b]\npatterns = ["/a/{y}"]\nthreshold_ms = 100\n',
            "endpoints.b.patterns",
            id="pattern-claimed-twice",
        ),
        pytest.param(
            '[endpoints.Payments]\npatterns = ["/p"]\nthreshold_ms = 100\n',
            "endpoints.Payments",
            id="bad-endpoint-name",
        ),
        pytest.param(
            '[endpoints.other]\npatterns = ["/p"]\nthreshold_ms = 100\n',
            "endpoints.other",
            id="reserved-endpoint-name",
        ),
        pytest.param("endpoints = 3\n", "endpoints", id="endpoints-not-a-table"),
        pytest.param(
            "[endpoints]\npayments = 3\n", "endpoints.payments", id="endpoint-not-a-table"
        ),
        pytest.param('timezone = "Mars/Olympus_Mons"\n', "timezone", id="unknown-zone"),
        pytest.param("timezone = 0\n", "timezone", id="zone-not-a-string"),
        pytest.param("season_months = [5, 13]\n", "season_months", id="month-13"),
        pytest.param("season_months = [0]\n", "season_months", id="month-0"),
        pytest.param('season_months = ["May"]\n', "season_months", id="month-name"),
        pytest.param("season_months = 5\n", "season_months", id="months-not-a-list"),
        pytest.param("season_months = [5.5]\n", "season_months", id="month-float"),
        pytest.param("default_threshold_ms = -1\n", "default_threshold_ms", id="default-negative"),
        pytest.param('default_threshold_ms = "200"\n', "default_threshold_ms", id="default-text"),
        pytest.param(
            "critical_wedding_day_cap_ms = 0\n", "critical_wedding_day_cap_ms", id="cap-zero"
        ),
        pytest.param('saturday_mode = "yes"\n', "saturday_mode", id="saturday-text"),
        pytest.param("trust_baggage = 1\n", "trust_baggage", id="trust-int"),
        pytest.param(
            'trust_forwarded_client = "false"\n', "trust_forwarded_client", id="forwarded-text"
        ),
        pytest.param(
            PAYMENTS + "threshold_ms = 150\nwedding_id_from_query = 1\n",
            "endpoints.payments.wedding_id_from_query",
            id="from-query-int",
        ),
        pytest.param("[bands]\nfinal_week = -0.5\n", "bands.final_week", id="band-negative"),
        pytest.param('[bands]\nfinal_week = "x"\n', "bands.final_week", id="band-text"),
        pytest.param("bands = 3\n", "bands", id="bands-not-a-table"),
        pytest.param(
            "[bands]\nplanning = 1.0\n[bands]\npast = 1.0\n", "bands", id="bands-declared-twice"
        ),
    ],
)
def test_bad_file_raises_one_config_error(tmp_path: Path, text: str, key: str) -> None:
    """Each mistake in a file raises one one-line ConfigError naming the key."""
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig.from_file(write(tmp_path, text))
    assert_one_config_error(excinfo, key)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    """A file that is not TOML raises a ConfigError keyed by its path."""
    path = write(tmp_path, "timezone = \n")
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig.from_file(path)
    assert_one_config_error(excinfo, str(path))


def test_overlong_integer_literal_names_the_file(tmp_path: Path) -> None:
    """An integer literal too long for Python to read raises a ConfigError keyed by the path."""
    path = write(tmp_path, "default_threshold_ms = " + "9" * 5_000 + "\n")
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig.from_file(path)
    assert_one_config_error(excinfo, str(path))


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    """A file that cannot be read raises a ConfigError keyed by its path."""
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig.from_file(path)
    assert_one_config_error(excinfo, str(path))


def test_directory_instead_of_file_names_the_path(tmp_path: Path) -> None:
    """A directory given as the config file raises a ConfigError keyed by its path."""
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig.from_file(tmp_path)
    assert_one_config_error(excinfo, str(tmp_path))


# --- load_config: precedence -----------------------------------------------------------------

ENV_OVERRIDES = [
    pytest.param(
        "WEDSYNC_OTEL_TIMEZONE",
        "America/New_York",
        'timezone = "Australia/Sydney"\n',
        "timezone",
        "Australia/Sydney",
        "America/New_York",
        id="timezone",
    ),
    pytest.param(
        "WEDSYNC_OTEL_SATURDAY_MODE",
        "false",
        "saturday_mode = true\n",
        "saturday_mode",
        True,
        False,
        id="saturday_mode",
    ),
    pytest.param(
        "WEDSYNC_OTEL_SEASON_MONTHS",
        "6,7,8",
        "season_months = [1, 2]\n",
        "season_months",
        frozenset({1, 2}),
        frozenset({6, 7, 8}),
        id="season_months",
    ),
    pytest.param(
        "WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS",
        "350",
        "default_threshold_ms = 250\n",
        "default_threshold_ms",
        250.0,
        350.0,
        id="default_threshold_ms",
    ),
    pytest.param(
        "WEDSYNC_OTEL_TRUST_BAGGAGE",
        "true",
        "trust_baggage = false\n",
        "trust_baggage",
        False,
        True,
        id="trust_baggage",
    ),
    pytest.param(
        "WEDSYNC_OTEL_TRUST_FORWARDED_CLIENT",
        "false",
        "trust_forwarded_client = true\n",
        "trust_forwarded_client",
        True,
        False,
        id="trust_forwarded_client",
    ),
]


@pytest.mark.parametrize(
    ("variable", "env_text", "file_text", "field", "file_value", "env_value"), ENV_OVERRIDES
)
def test_environment_overrides_file(
    tmp_path: Path,
    variable: str,
    env_text: str,
    file_text: str,
    field: str,
    file_value: object,
    env_value: object,
) -> None:
    """A setting in the environment wins over the same setting in the file."""
    config = load_config(path=write(tmp_path, file_text), environ={variable: env_text})
    assert getattr(config, field) == env_value


@pytest.mark.parametrize(
    ("variable", "env_text", "file_text", "field", "file_value", "env_value"), ENV_OVERRIDES
)
def test_file_overrides_default(
    tmp_path: Path,
    variable: str,
    env_text: str,
    file_text: str,
    field: str,
    file_value: object,
    env_value: object,
) -> None:
    """A setting in the file wins over the default when the environment is silent."""
    config = load_config(path=write(tmp_path, file_text), environ={})
    assert getattr(config, field) == file_value


@pytest.mark.parametrize(
    ("variable", "env_text", "file_text", "field", "file_value", "env_value"), ENV_OVERRIDES
)
def test_environment_overrides_default(
    variable: str,
    env_text: str,
    file_text: str,
    field: str,
    file_value: object,
    env_value: object,
) -> None:
    """A setting in the environment wins over the default without any file."""
    assert getattr(load_config(environ={variable: env_text}), field) == env_value


@pytest.mark.parametrize(
    ("variable", "env_text", "file_text", "field", "file_value", "env_value"), ENV_OVERRIDES
)
def test_blank_environment_value_is_ignored(
    tmp_path: Path,
    variable: str,
    env_text: str,
    file_text: str,
    field: str,
    file_value: object,
    env_value: object,
) -> None:
    """An empty or blank variable leaves the file's value in place."""
    config = load_config(path=write(tmp_path, file_text), environ={variable: "  "})
    assert getattr(config, field) == file_value


def test_environment_override_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    """Overriding one setting from the environment keeps every other setting from the file."""
    path = write(tmp_path, FULL_FILE)
    config = load_config(path=path, environ={"WEDSYNC_OTEL_TIMEZONE": "UTC"})
    assert config == WeddingConfig.from_file(path).replace(timezone="UTC")


def test_no_file_and_empty_environment_gives_defaults() -> None:
    """With no file and an empty environment, load_config returns the defaults."""
    assert load_config(environ={}) == WeddingConfig()


def test_config_variable_names_the_file(tmp_path: Path) -> None:
    """WEDSYNC_OTEL_CONFIG names the file to read when no path is given."""
    path = write(tmp_path, 'timezone = "Asia/Tokyo"\n')
    assert load_config(environ={CONFIG_FILE_ENV: str(path)}).timezone == "Asia/Tokyo"


def test_config_variable_name() -> None:
    """The file variable is WEDSYNC_OTEL_CONFIG."""
    assert CONFIG_FILE_ENV == "WEDSYNC_OTEL_CONFIG"


def test_explicit_path_beats_config_variable(tmp_path: Path) -> None:
    """A path argument wins over WEDSYNC_OTEL_CONFIG."""
    chosen = write(tmp_path, 'timezone = "Asia/Tokyo"\n')
    ignored = tmp_path / "ignored.toml"
    ignored.write_text('timezone = "UTC"\n', encoding="utf-8")
    config = load_config(path=chosen, environ={CONFIG_FILE_ENV: str(ignored)})
    assert config.timezone == "Asia/Tokyo"


def test_empty_config_variable_reads_no_file() -> None:
    """An empty WEDSYNC_OTEL_CONFIG means no file."""
    assert load_config(environ={CONFIG_FILE_ENV: ""}) == WeddingConfig()


def test_missing_file_from_variable_names_the_file(tmp_path: Path) -> None:
    """A WEDSYNC_OTEL_CONFIG pointing nowhere raises a ConfigError keyed by that path."""
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ={CONFIG_FILE_ENV: str(path)})
    assert_one_config_error(excinfo, str(path))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
    ],
)
def test_environment_booleans(text: str, value: bool) -> None:
    """Boolean variables accept 1/0, true/false, yes/no and on/off in any case."""
    assert load_config(environ={"WEDSYNC_OTEL_SATURDAY_MODE": text}).saturday_mode is value


@pytest.mark.parametrize(
    ("text", "months"),
    [("6,7,8", {6, 7, 8}), (" 6, 7 ,8, ", {6, 7, 8}), ("12", {12}), ("5,5", {5})],
)
def test_environment_months(text: str, months: set[int]) -> None:
    """Season months are read from a comma-separated list, spaces and blanks ignored."""
    config = load_config(environ={"WEDSYNC_OTEL_SEASON_MONTHS": text})
    assert config.season_months == frozenset(months)


def test_environment_timezone_is_stripped() -> None:
    """Surrounding whitespace in the time zone variable is ignored."""
    assert load_config(environ={"WEDSYNC_OTEL_TIMEZONE": " Asia/Tokyo\n"}).timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        pytest.param(
            {"WEDSYNC_OTEL_SATURDAY_MODE": "maybe"}, "WEDSYNC_OTEL_SATURDAY_MODE", id="bool"
        ),
        pytest.param(
            {"WEDSYNC_OTEL_TRUST_BAGGAGE": "trusted"}, "WEDSYNC_OTEL_TRUST_BAGGAGE", id="trust"
        ),
        pytest.param(
            {"WEDSYNC_OTEL_TRUST_FORWARDED_CLIENT": "proxy"},
            "WEDSYNC_OTEL_TRUST_FORWARDED_CLIENT",
            id="forwarded",
        ),
        pytest.param(
            {"WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS": "fast"},
            "WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS",
            id="number",
        ),
        pytest.param(
            {"WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS": "-5"}, "default_threshold_ms", id="negative"
        ),
        pytest.param(
            {"WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS": "nan"}, "default_threshold_ms", id="nan"
        ),
        pytest.param(
            {"WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS": "1e400"}, "default_threshold_ms", id="overflow"
        ),
        pytest.param(
            {"WEDSYNC_OTEL_SEASON_MONTHS": "May,June"}, "WEDSYNC_OTEL_SEASON_MONTHS", id="months"
        ),
        pytest.param({"WEDSYNC_OTEL_SEASON_MONTHS": "0,13"}, "season_months", id="month-range"),
        pytest.param({"WEDSYNC_OTEL_TIMEZONE": "Mars/Olympus_Mons"}, "timezone", id="zone"),
    ],
)
def test_bad_environment_raises_one_config_error(environ: dict[str, str], key: str) -> None:
    """A variable that will not parse names itself; a parsed but invalid value names its setting."""
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ=environ)
    assert_one_config_error(excinfo, key)


def test_environment_replaces_a_file_value_before_validation(tmp_path: Path) -> None:
    """An invalid file value that the environment overrides is never validated."""
    path = write(tmp_path, 'timezone = "Mars/Olympus_Mons"\n')
    config = load_config(path=path, environ={"WEDSYNC_OTEL_TIMEZONE": "UTC"})
    assert config.timezone == "UTC"


# --- hypothesis -----------------------------------------------------------------------------------

_ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Pacific/Apia", "UTC"]
_POSITIVE = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)
_NAMES = st.lists(
    st.from_regex(r"\A[a-z][a-z0-9_]{0,15}\Z").filter(lambda n: n != "other"),
    unique=True,
    max_size=4,
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid configuration document, with any subset of its keys present."""
    document: dict[str, Any] = {}
    optional = {
        "timezone": st.sampled_from(_ZONES),
        "saturday_mode": st.booleans(),
        "trust_baggage": st.booleans(),
        "trust_forwarded_client": st.booleans(),
        "season_months": st.lists(st.integers(1, 12), unique=True).map(sorted),
        "default_threshold_ms": _POSITIVE,
        "critical_wedding_day_cap_ms": _POSITIVE,
        "bands": st.dictionaries(st.sampled_from([b.value for b in Band]), _POSITIVE),
        "endpoints": _NAMES.flatmap(
            lambda names: st.fixed_dictionaries(
                {
                    name: st.fixed_dictionaries(
                        {"patterns": st.just([f"/{name}/**"]), "threshold_ms": _POSITIVE},
                        optional={
                            "critical": st.booleans(),
                            "wedding_id_from_query": st.booleans(),
                        },
                    )
                    for name in names
                }
            )
        ),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            document[key] = draw(strategy)
    return document


def _toml(document: dict[str, Any]) -> str:
    lines = [f"{k} = {_toml_value(v)}" for k, v in document.items() if not isinstance(v, dict)]
    if "bands" in document:
        lines.append("[bands]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in document["bands"].items()]
    if "endpoints" in document:
        lines.append("[endpoints]")
        for name, table in document["endpoints"].items():
            lines.append(f"[endpoints.{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_documents())
def test_file_round_trips_any_valid_document(tmp_path: Path, document: dict[str, Any]) -> None:
    """Whatever subset of valid settings a file holds, each is loaded and the rest stay default."""
    config = WeddingConfig.from_file(write(tmp_path, _toml(document)))
    expected = WeddingConfig()
    for key in ("timezone", "saturday_mode", "trust_baggage", "trust_forwarded_client"):
        if key in document:
            expected = expected.replace(**{key: document[key]})
    if "season_months" in document:
        expected = expected.replace(season_months=frozenset(document["season_months"]))
    for key in ("default_threshold_ms", "critical_wedding_day_cap_ms"):
        if key in document:
            expected = expected.replace(**{key: float(document[key])})
    if "bands" in document:
        expected = expected.replace(bands=BandMultipliers(**document["bands"]))
    if "endpoints" in document:
        expected = expected.replace(
            endpoints=tuple(
                EndpointSpec(
                    name=name,
                    patterns=tuple(table["patterns"]),
                    threshold_ms=table["threshold_ms"],
                    critical=table.get("critical", False),
                    wedding_id_from_query=table.get("wedding_id_from_query", False),
                )
                for name, table in document["endpoints"].items()
            )
        )
    assert config == expected


@given(_POSITIVE)
def test_any_positive_environment_threshold_is_used(threshold: float) -> None:
    """Any positive finite number in WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS becomes the default."""
    config = load_config(environ={"WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS": repr(threshold)})
    assert config.default_threshold_ms == threshold


@given(st.one_of(st.floats(max_value=0), st.just(math.inf), st.just(-math.inf)))
def test_any_non_positive_environment_threshold_is_refused(threshold: float) -> None:
    """Zero, negative, infinite or NaN thresholds from the environment are a ConfigError."""
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ={"WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS": repr(threshold)})
    assert_one_config_error(excinfo, "default_threshold_ms")


_SETTING_VARIABLES = (
    "WEDSYNC_OTEL_TIMEZONE",
    "WEDSYNC_OTEL_SATURDAY_MODE",
    "WEDSYNC_OTEL_SEASON_MONTHS",
    "WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS",
    "WEDSYNC_OTEL_TRUST_BAGGAGE",
    "WEDSYNC_OTEL_TRUST_FORWARDED_CLIENT",
)


def _load_or_error(environ: dict[str, str]) -> WeddingConfig | ConfigError:
    try:
        return load_config(environ=environ)
    except ConfigError as error:
        return error


@given(st.sampled_from(_SETTING_VARIABLES), st.text(max_size=20))
def test_environment_gives_a_config_or_one_config_error(variable: str, text: str) -> None:
    """Any text in any setting variable gives a config or a one-line ConfigError, nothing else."""
    outcome = _load_or_error({variable: text})
    assert isinstance(outcome, WeddingConfig) or "\n" not in str(outcome)


# --- each setting declared once -----------------------------------------------------------------

_TABLES = frozenset({"bands", "endpoints", "privacy"})
_README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _file_form(value: object) -> object:
    """A default as a parsed TOML document holds it: sets and tuples are lists."""
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _env_form(value: object) -> str:
    """A default as a variable spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset):
        value = sorted(value, key=str)
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def _ids(settings: tuple[Setting[Any], ...]) -> list[str]:
    return [setting.key for setting in settings]


def test_every_scalar_field_is_a_declared_setting() -> None:
    """SETTINGS lists every WeddingConfig field but the tables, in field order."""
    scalar = [f.name for f in dataclasses.fields(WeddingConfig) if f.name not in _TABLES]
    assert _ids(SETTINGS) == scalar


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids(SETTINGS))
def test_a_settings_default_is_the_dataclass_default(setting: Setting[Any]) -> None:
    """The declared default is what a WeddingConfig built without the field holds."""
    assert getattr(WeddingConfig(), setting.key) == setting.default


_VALUED = tuple(s for s in SETTINGS if s.default is not None)
"""The settings whose default a file or a variable can spell (TOML has no null)."""


@pytest.mark.parametrize("setting", _VALUED, ids=_ids(_VALUED))
def test_the_file_parser_accepts_every_declared_key(setting: Setting[Any]) -> None:
    """Each declared key, set to its default in a document, loads as the default config."""
    document = {setting.key: _file_form(setting.default)}
    assert WeddingConfig.from_mapping(document) == WeddingConfig()


@pytest.mark.parametrize("setting", _VALUED, ids=_ids(_VALUED))
def test_the_environment_parser_reads_every_declared_variable(setting: Setting[Any]) -> None:
    """Each declared variable, set to its default's text, loads as the default config."""
    assert load_config(environ={setting.env: _env_form(setting.default)}) == WeddingConfig()


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids(SETTINGS))
def test_a_settings_check_runs_when_the_config_is_built(setting: Setting[Any]) -> None:
    """A value of the wrong type for any declared setting is one ConfigError naming it."""
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig(**{setting.key: "short" if setting.key == "trust_secret" else object()})
    assert_one_config_error(excinfo, setting.key)


def test_an_unknown_key_lists_the_declared_keys() -> None:
    """The unknown-key error names exactly the declared settings and the tables."""
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig.from_mapping({"timezon": "UTC"})
    known = ", ".join(sorted([*_ids(SETTINGS), *_TABLES]))
    assert excinfo.value.problem == f"unknown key (known keys: {known})"


@pytest.mark.parametrize(
    "setting", [*SETTINGS, *PRIVACY_SETTINGS, *EXPORT_SETTINGS], ids=lambda s: s.env
)
def test_every_setting_is_documented_in_its_declaration(setting: Setting[Any]) -> None:
    """Each declaration carries a one-sentence doc and a variable of the package's scheme."""
    assert setting.doc[:1].isupper()
    assert setting.doc.endswith(".")
    assert "\n" not in setting.doc
    assert setting.env.startswith(("WEDSYNC_OTEL_", "OTEL_BSP_"))


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids(SETTINGS))
def test_the_readme_names_each_settings_variable(setting: Setting[Any]) -> None:
    """The README's variable table gives each declared variable with its key."""
    assert f"| `{setting.env}` | `{setting.key}`" in _README


def test_privacy_settings_cover_the_policy_and_take_its_defaults() -> None:
    """PRIVACY_SETTINGS declares every PrivacyPolicy field, its default read from the field."""
    assert _ids(PRIVACY_SETTINGS) == [f.name for f in dataclasses.fields(PrivacyPolicy)]
    for setting in PRIVACY_SETTINGS:
        assert getattr(PrivacyPolicy(), setting.key) == setting.default


@pytest.mark.parametrize(
    "setting",
    [s for s in PRIVACY_SETTINGS if s.in_file],
    ids=_ids(tuple(s for s in PRIVACY_SETTINGS if s.in_file)),
)
def test_every_privacy_key_is_read_from_the_file_and_the_environment(
    setting: Setting[Any],
) -> None:
    """Each [privacy] key, file or variable, set to its default, loads as the default config."""
    document = {"privacy": {setting.key: _file_form(setting.default)}}
    assert WeddingConfig.from_mapping(document) == WeddingConfig()
    assert load_config(environ={setting.env: _env_form(setting.default)}) == WeddingConfig()


def test_a_privacy_secret_in_a_file_is_refused_naming_its_variable() -> None:
    """privacy.hash_secret is declared environment-only, and a file setting it is refused."""
    with pytest.raises(ConfigError) as excinfo:
        WeddingConfig.from_mapping({"privacy": {"hash_secret": "a" * 20}})
    assert_one_config_error(excinfo, "privacy.hash_secret")
    assert excinfo.value.problem == "set it through WEDSYNC_OTEL_PRIVACY_HASH_SECRET, not in a file"


def test_a_privacy_secret_from_the_environment_is_read() -> None:
    """WEDSYNC_OTEL_PRIVACY_HASH_SECRET sets the policy's hash secret."""
    config = load_config(environ={"WEDSYNC_OTEL_PRIVACY_HASH_SECRET": " s" * 10})
    assert config.privacy.hash_secret == ("s " * 10).strip()


def test_export_tuning_mirrors_the_declared_export_settings() -> None:
    """ExportTuning has an optional field per declared export setting; defaults come from these."""
    assert [f.name for f in dataclasses.fields(ExportTuning)] == _ids(EXPORT_SETTINGS)
    assert [f.name for f in dataclasses.fields(ExportSettings)] == _ids(EXPORT_SETTINGS)
    assert all(getattr(ExportTuning(), s.key) is None for s in EXPORT_SETTINGS)
    resolved = ExportTuning().resolve({})
    assert {s.key: getattr(resolved, s.key) for s in EXPORT_SETTINGS} == {
        s.key: s.default for s in EXPORT_SETTINGS
    }


@pytest.mark.parametrize("setting", EXPORT_SETTINGS, ids=_ids(EXPORT_SETTINGS))
def test_the_readme_table_gives_each_export_setting(setting: Setting[Any]) -> None:
    """The README's export table gives each declared field with its variable and default."""
    default = f"{setting.default:,.0f}"
    assert f"| `{setting.key}` | `{setting.env}` | {default}" in _README


@pytest.mark.parametrize("setting", EXPORT_SETTINGS, ids=_ids(EXPORT_SETTINGS))
def test_each_export_variable_is_read(setting: Setting[Any]) -> None:
    """Each declared export variable, set to a whole number, reaches its field."""
    value = 1 if setting.key == "max_export_batch_size" else 4096
    assert getattr(ExportTuning().resolve({setting.env: str(value)}), setting.key) == value


def test_a_bad_otel_bsp_variable_is_logged_and_the_default_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lenient declared setting that will not parse logs one warning, as the SDK does."""
    with caplog.at_level(logging.WARNING, logger="wedsync_otel"):
        settings = ExportTuning().resolve({"OTEL_BSP_SCHEDULE_DELAY": "soon"})
    assert settings.schedule_delay_millis == ExportSettings().schedule_delay_millis
    assert caplog.messages == [
        "wedsync-otel: OTEL_BSP_SCHEDULE_DELAY='soon' is not a whole number; using the default"
    ]


def test_a_bad_own_export_variable_is_one_config_error() -> None:
    """A strict declared export setting that will not parse is a ConfigError naming the variable."""
    with pytest.raises(ConfigError) as excinfo:
        ExportTuning().resolve({"WEDSYNC_OTEL_EXPORT_MAX_BACKOFF_S": "soon"})
    assert_one_config_error(excinfo, "WEDSYNC_OTEL_EXPORT_MAX_BACKOFF_S")
    assert excinfo.value.problem == "must be a number, got 'soon'"
