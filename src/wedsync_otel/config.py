"""WeddingConfig: the catalogue, bands and calendar, loaded and validated in one place.

Every scalar setting is declared once, as a `WeddingConfig` field made with
`setting()`: the field name is its file key, and the declaration holds its
environment variable, parser, default, check and meaning. `SETTINGS` reads
those declarations back, and `load_config` resolves them with the precedence
argument, then environment, then file, then default. Whatever is wrong
surfaces as one `ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from wedsync_otel._settings import (
    BOOL,
    MONTHS,
    NUMBER,
    STRING_SET,
    STRINGS,
    TEXT,
    WHOLE,
    Kind,
    Setting,
    declared,
    field_setting,
    from_environment,
    setting,
)
from wedsync_otel.calendar import Band
from wedsync_otel.catalogue import OTHER, EndpointSpec, pattern_problem, pattern_shape
from wedsync_otel.errors import ConfigError
from wedsync_otel.privacy.scrubber import PrivacyPolicy

CONFIG_FILE_ENV: Final = "WEDSYNC_OTEL_CONFIG"
"""Environment variable naming a TOML config file for `configure()`."""

_ENDPOINT_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_ENDPOINT_KEYS = frozenset({"patterns", "threshold_ms", "critical", "wedding_id_from_query"})
_TOML_DUPLICATE = re.compile(r"Cannot declare \((?P<key>[^)]*)\) twice")


@dataclass(frozen=True, kw_only=True, slots=True)
class BandMultipliers:
    """Threshold multiplier per proximity band; ``threshold = base * multiplier``."""

    planning: float = 1.0
    final_month: float = 1.0
    final_week: float = 0.75
    wedding_day: float = 0.5
    past: float = 1.0
    unknown: float = 1.0

    def for_band(self, band: Band) -> float:
        """The multiplier of one band."""
        value: float = getattr(self, band.value)
        return value


DEFAULT_ENDPOINTS: Final = (
    EndpointSpec(
        name="venue_availability",
        patterns=("/api/venues/availability", "/api/venues/{venue_id}/availability"),
        threshold_ms=200.0,
        critical=True,
    ),
    EndpointSpec(
        name="supplier_profiles",
        patterns=("/api/suppliers/profiles/**", "/api/suppliers/{supplier_id}/profile"),
        threshold_ms=500.0,
        critical=False,
    ),
    EndpointSpec(
        name="couple_timeline",
        patterns=("/api/couples/timeline/**", "/api/couples/{couple_id}/timeline/**"),
        threshold_ms=300.0,
        critical=True,
    ),
    EndpointSpec(
        name="payments",
        patterns=("/api/payments/**",),
        threshold_ms=150.0,
        critical=True,
    ),
    EndpointSpec(
        name="guest_lists",
        patterns=("/api/guest-lists/**", "/api/weddings/{wedding_id}/guests/**"),
        threshold_ms=250.0,
        critical=False,
    ),
    EndpointSpec(
        name="rsvp",
        patterns=("/api/rsvp/**",),
        threshold_ms=200.0,
        critical=True,
    ),
)
"""The WedSync catalogue from its performance report.

No endpoint takes a wedding id from the query string: a client chooses the
query on any URL, and could put any request into the wedding-day band. A
deployment whose clients name the wedding with ``?wedding_id=`` opts an
endpoint in with ``wedding_id_from_query`` (the demo does, for venue
availability and supplier profiles, whose paths name a venue or a supplier).
"""


def _check_bool(key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")


def _check_positive(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"must be a number, got {value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:
        raise ConfigError(key, "is too large") from None
    if not finite or value <= 0:
        raise ConfigError(key, f"must be a positive number, got {value!r}")


def _check_timezone(key: str, name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigError(key, f"must be an IANA time zone name, got {name!r}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise ConfigError(key, f"unknown time zone {name!r}") from None


def _check_months(key: str, months: object) -> None:
    if not isinstance(months, frozenset):
        raise ConfigError(key, f"must be a frozenset of month numbers, got {months!r}")
    for month in sorted(months, key=repr):  # repr: the set may mix types
        if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
            raise ConfigError(key, f"month {month!r} out of range 1-12")


def _check_names(key: str, names: object) -> None:
    if not isinstance(names, tuple) or not all(
        isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name)
        for name in names
    ):
        raise ConfigError(key, f"must be parameter names like wedding_id, got {names!r}")


def _check_networks(key: str, networks: object) -> None:
    if not isinstance(networks, tuple):
        raise ConfigError(key, f"must be a list of CIDR networks, got {networks!r}")
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except (TypeError, ValueError):
            raise ConfigError(key, f"{network!r} is not a network like 10.0.0.0/8") from None


def _check_header(key: str, name: object) -> None:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name):
        raise ConfigError(key, f"must be an HTTP header name, got {name!r}")


def _check_secret(key: str, secret: object) -> None:
    if secret is not None and len(cast("str", secret)) < 16:
        raise ConfigError(key, "must be at least 16 characters")


@dataclass(frozen=True, kw_only=True, slots=True)
class WeddingConfig:
    """Everything the span processor needs to judge a request; immutable once built.

    Each scalar field is declared with `setting()`: its variable, parser,
    default, check and meaning (see `SETTINGS`); the tables follow.
    """

    timezone: str = setting(
        env="WEDSYNC_OTEL_TIMEZONE",
        kind=TEXT,
        default="Europe/London",
        check=_check_timezone,
        doc="IANA time zone name; dates and Saturdays are taken here.",
    )
    saturday_mode: bool = setting(
        env="WEDSYNC_OTEL_SATURDAY_MODE",
        kind=BOOL,
        default=True,
        check=_check_bool,
        doc="Critical endpoints on Saturdays count as wedding-day traffic.",
    )
    season_months: frozenset[int] = setting(
        env="WEDSYNC_OTEL_SEASON_MONTHS",
        kind=MONTHS,
        default=frozenset(range(5, 11)),
        check=_check_months,
        doc="The wedding season's months, 1-12.",
    )
    default_threshold_ms: float = setting(
        env="WEDSYNC_OTEL_DEFAULT_THRESHOLD_MS",
        kind=NUMBER,
        default=200.0,
        check=_check_positive,
        doc="The threshold of requests no endpoint claims (`other`).",
    )
    critical_wedding_day_cap_ms: float = setting(
        env="WEDSYNC_OTEL_CRITICAL_WEDDING_DAY_CAP_MS",
        kind=NUMBER,
        default=100.0,
        check=_check_positive,
        doc="The cap on a critical endpoint's wedding-day threshold.",
    )
    trust_baggage: bool = setting(
        env="WEDSYNC_OTEL_TRUST_BAGGAGE",
        kind=BOOL,
        default=False,
        check=_check_bool,
        doc="Read wedding.date and wedding.id from all inbound W3C baggage.",
    )
    measure_unsampled: bool = setting(
        env="WEDSYNC_OTEL_MEASURE_UNSAMPLED",
        kind=BOOL,
        default=True,
        check=_check_bool,
        doc="Judge and measure the request spans the trace sampler drops (`sampling`).",
    )
    slow_query_ms: float = setting(
        env="WEDSYNC_OTEL_SLOW_QUERY_MS",
        kind=NUMBER,
        default=50.0,
        check=_check_positive,
        doc="A database query slower than this is marked slow.",
    )
    n_plus_one_limit: int = setting(
        env="WEDSYNC_OTEL_N_PLUS_ONE_LIMIT",
        kind=WHOLE,
        default=5,
        check=_check_positive,
        doc="The same query shape more often than this in one request is an N+1.",
    )
    request_timeout_s: float = setting(
        env="WEDSYNC_OTEL_REQUEST_TIMEOUT_S",
        kind=NUMBER,
        default=300.0,
        check=_check_positive,
        doc="Cache and DB totals of a request whose span never ends are dropped after this.",
    )
    wedding_id_params: tuple[str, ...] = setting(
        env="WEDSYNC_OTEL_WEDDING_ID_PARAMS",
        kind=STRINGS,
        default=("wedding_id", "couple_id"),
        check=_check_names,
        doc="Path or query parameters that name the wedding.",
    )
    trusted_networks: tuple[str, ...] = setting(
        env="WEDSYNC_OTEL_TRUSTED_NETWORKS",
        kind=STRINGS,
        default=(),
        check=_check_networks,
        doc="CIDR networks of ASGI callers whose baggage is believed.",
    )
    trust_header: str = setting(
        env="WEDSYNC_OTEL_TRUST_HEADER",
        kind=TEXT,
        default="x-wedsync-trust",
        check=_check_header,
        doc="The header by which a caller that sends the shared secret is trusted.",
    )
    trust_secret: str | None = setting(
        env="WEDSYNC_OTEL_TRUST_SECRET",
        kind=TEXT,
        default=None,
        check=_check_secret,
        repr=False,
        doc="The shared secret of `trust_header`, 16 characters at least.",
    )
    trust_forwarded_client: bool = setting(
        env="WEDSYNC_OTEL_TRUST_FORWARDED_CLIENT",
        kind=BOOL,
        default=False,
        check=_check_bool,
        doc="Whether network trust may use a client address a proxy header set (`asgi`).",
    )
    bands: BandMultipliers = field(default_factory=BandMultipliers)
    endpoints: tuple[EndpointSpec, ...] = DEFAULT_ENDPOINTS
    privacy: PrivacyPolicy = field(default_factory=PrivacyPolicy)

    def __post_init__(self) -> None:
        for declared_setting in SETTINGS:
            declared_setting.validate(getattr(self, declared_setting.key))
        for band in Band:
            _check_positive(f"bands.{band.value}", self.bands.for_band(band))
        _check_endpoints(self.endpoints)
        _check_privacy(self.privacy)

    @classmethod
    def default(cls) -> WeddingConfig:
        """The WedSync defaults: its catalogue, Europe/London, Saturdays and May-October."""
        return cls()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WeddingConfig:
        """Read a TOML file (format in the README); raise `ConfigError` naming the bad key."""
        return load_config(path=path, environ={})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> WeddingConfig:
        """Build from a parsed TOML document (or any mapping of the same shape)."""
        return cls(**_fields_from_file(data))

    def replace(self, **changes: Any) -> WeddingConfig:
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)


SETTINGS: Final = declared(WeddingConfig)
"""Every scalar setting of `WeddingConfig`, read back from its field declarations."""

_SETTING_BY_KEY: Final = {s.key: s for s in SETTINGS}
_TABLE_KEYS: Final = frozenset({"bands", "endpoints", "privacy"})


def _privacy(
    key: str, env: str, kind: Kind[Any], doc: str, *, in_file: bool = True
) -> Setting[Any]:
    return field_setting(PrivacyPolicy, key, env=env, kind=kind, doc=doc, in_file=in_file)


PRIVACY_SETTINGS: Final = (
    _privacy(
        "allow_keys",
        "WEDSYNC_OTEL_PRIVACY_ALLOW_KEYS",
        STRING_SET,
        "Attribute keys exported exactly as set.",
    ),
    _privacy(
        "allow_values",
        "WEDSYNC_OTEL_PRIVACY_ALLOW_VALUES",
        STRING_SET,
        "Exact string values exported as they are wherever they appear.",
    ),
    _privacy(
        "sensitive_keys",
        "WEDSYNC_OTEL_PRIVACY_SENSITIVE_KEYS",
        STRINGS,
        "More words that make a key sensitive.",
    ),
    _privacy(
        "keep_query_params",
        "WEDSYNC_OTEL_PRIVACY_KEEP_QUERY_PARAMS",
        STRING_SET,
        "URL query parameters whose values are kept.",
    ),
    _privacy(
        "hash_secret",
        "WEDSYNC_OTEL_PRIVACY_HASH_SECRET",
        TEXT,
        "The key of the hash redaction markers carry; never in a file.",
        in_file=False,
    ),
    _privacy(
        "wedding_id_pattern",
        "WEDSYNC_OTEL_PRIVACY_WEDDING_ID_PATTERN",
        TEXT,
        "The shape of a real wedding id.",
    ),
    _privacy(
        "cache_namespaces",
        "WEDSYNC_OTEL_PRIVACY_CACHE_NAMESPACES",
        STRING_SET,
        "Cache key namespaces exported by name.",
    ),
)
"""The ``[privacy]`` table's settings; the defaults are `PrivacyPolicy`'s own fields'."""

_PRIVACY_SETTING_BY_KEY: Final = {s.key: s for s in PRIVACY_SETTINGS}


def load_config(
    *,
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> WeddingConfig:
    """Resolve the configuration: environment over file over defaults.

    ``path`` defaults to the file named by ``WEDSYNC_OTEL_CONFIG``; ``environ``
    defaults to ``os.environ`` (pass ``{}`` to ignore the environment).
    """
    env = os.environ if environ is None else environ
    file_path = path if path is not None else env.get(CONFIG_FILE_ENV) or None
    fields: dict[str, Any] = {}
    if file_path is not None:
        fields.update(_fields_from_file(_read_toml(Path(file_path))))
    fields.update(from_environment(SETTINGS, env))
    privacy = from_environment(PRIVACY_SETTINGS, env)
    if privacy:
        base = fields.get("privacy", PrivacyPolicy())
        fields["privacy"] = dataclasses.replace(base, **privacy)
    return WeddingConfig(**fields)


def _privacy_from_file(value: object) -> PrivacyPolicy:
    if not isinstance(value, Mapping):
        raise ConfigError("privacy", "must be a table of privacy settings")
    found: dict[str, Any] = {}
    for key, item in value.items():
        setting = _PRIVACY_SETTING_BY_KEY.get(key)
        if setting is None:
            known = ", ".join(sorted(_PRIVACY_SETTING_BY_KEY))
            raise ConfigError(f"privacy.{key}", f"unknown key (known: {known})")
        found[key] = setting.from_file(f"privacy.{key}", item)
    return PrivacyPolicy(**found)


def _read_toml(path: Path) -> Mapping[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        duplicate = _TOML_DUPLICATE.search(str(exc))
        if duplicate:
            parts = (part.strip(" '\"") for part in duplicate["key"].split(","))
            key = ".".join(part for part in parts if part)
            what = "duplicate endpoint" if key.startswith("endpoints.") else "duplicate table"
            raise ConfigError(key, f"{what} ({exc})") from None
        raise ConfigError(str(path), f"not valid TOML ({exc})") from None
    except ValueError as exc:  # tomllib's own limits, e.g. an integer of 5,000 digits
        raise ConfigError(str(path), f"not valid TOML ({exc})") from None


def _fields_from_file(data: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SETTING_BY_KEY:
            fields[key] = _SETTING_BY_KEY[key].from_file(key, value)
        elif key == "bands":
            fields["bands"] = _bands_from_file(value)
        elif key == "endpoints":
            fields["endpoints"] = _endpoints_from_file(value)
        elif key == "privacy":
            fields["privacy"] = _privacy_from_file(value)
        else:
            known = ", ".join(sorted([*_SETTING_BY_KEY, *_TABLE_KEYS]))
            raise ConfigError(key, f"unknown key (known keys: {known})")
    return fields


def _bands_from_file(value: object) -> BandMultipliers:
    if not isinstance(value, Mapping):
        raise ConfigError("bands", "must be a table of band = multiplier")
    known = {band.value for band in Band}
    multipliers: dict[str, float] = {}
    for band, multiplier in value.items():
        if band not in known:
            raise ConfigError(f"bands.{band}", f"unknown band (known: {', '.join(sorted(known))})")
        multipliers[band] = NUMBER.from_file(f"bands.{band}", multiplier)
    return BandMultipliers(**multipliers)


def _endpoints_from_file(value: object) -> tuple[EndpointSpec, ...]:
    if not isinstance(value, Mapping):
        raise ConfigError("endpoints", "must be a table of [endpoints.NAME] tables")
    specs = []
    for name, table in value.items():
        key = f"endpoints.{name}"
        if not isinstance(table, Mapping):
            raise ConfigError(key, "must be a table with patterns, threshold_ms and critical")
        unknown = sorted(set(table) - _ENDPOINT_KEYS, key=repr)  # repr: keys may mix types
        if unknown:
            known = ", ".join(sorted(_ENDPOINT_KEYS))
            raise ConfigError(f"{key}.{unknown[0]}", f"unknown key (known: {known})")
        if "patterns" not in table:
            raise ConfigError(f"{key}.patterns", "missing")
        if "threshold_ms" not in table:
            raise ConfigError(f"{key}.threshold_ms", "missing")
        patterns = table["patterns"]
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(f"{key}.patterns", f"must be a list of strings, got {patterns!r}")
        specs.append(
            EndpointSpec(
                name=name,
                patterns=tuple(patterns),
                threshold_ms=NUMBER.from_file(f"{key}.threshold_ms", table["threshold_ms"]),
                critical=BOOL.from_file(f"{key}.critical", table.get("critical", False)),
                wedding_id_from_query=BOOL.from_file(
                    f"{key}.wedding_id_from_query", table.get("wedding_id_from_query", False)
                ),
            )
        )
    return tuple(specs)


def _check_privacy(policy: object) -> None:
    if not isinstance(policy, PrivacyPolicy):
        raise ConfigError("privacy", f"must be a PrivacyPolicy, got {policy!r}")
    try:
        re.compile(policy.wedding_id_pattern)
    except re.error as exc:
        raise ConfigError(
            "privacy.wedding_id_pattern", f"not a regular expression ({exc})"
        ) from None
    if policy.hash_secret is not None and len(policy.hash_secret) < 16:
        raise ConfigError("privacy.hash_secret", "must be at least 16 characters")
    for name in policy.cache_namespaces:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise ConfigError("privacy.cache_namespaces", f"{name!r} is not a key namespace")


def _check_endpoints(endpoints: Sequence[EndpointSpec]) -> None:
    if not isinstance(endpoints, tuple):
        raise ConfigError("endpoints", "must be a tuple of EndpointSpec")
    names: set[str] = set()
    shapes: dict[str, str] = {}
    for spec in endpoints:
        key = f"endpoints.{spec.name}"
        if not isinstance(spec.name, str) or not _ENDPOINT_NAME.fullmatch(spec.name):
            raise ConfigError(key, "name must be lower-case letters, digits and '_'")
        if spec.name == OTHER:
            raise ConfigError(key, f"{OTHER!r} is reserved for unclaimed paths")
        if spec.name in names:
            raise ConfigError(key, "duplicate endpoint")
        names.add(spec.name)
        _check_positive(f"{key}.threshold_ms", spec.threshold_ms)
        _check_bool(f"{key}.critical", spec.critical)
        _check_bool(f"{key}.wedding_id_from_query", spec.wedding_id_from_query)
        if not spec.patterns:
            raise ConfigError(f"{key}.patterns", "needs at least one pattern")
        for pattern in spec.patterns:
            problem = pattern_problem(pattern)
            if problem:
                raise ConfigError(f"{key}.patterns", problem)
            owner = shapes.setdefault(pattern_shape(pattern), spec.name)
            if owner != spec.name:
                raise ConfigError(
                    f"{key}.patterns",
                    f"pattern {pattern!r} is already claimed by endpoint {owner!r}",
                )
