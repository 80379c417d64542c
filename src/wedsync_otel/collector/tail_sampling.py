"""The contrib collector's ``tail_sampling`` keep-or-drop decision, for the policies we ship.

The OpenTelemetry Collector (contrib) cannot run on every machine that checks
``collector-config/gateway.yaml``, so this module evaluates that file's
``tail_sampling`` policies the way the contrib processor does, on plain values:
a `Trace` is every span of one trace id, each span with its attributes, its
status and its resource's attributes.

Policy types, as in ``processor/tailsamplingprocessor/internal/sampling``:

- ``boolean_attribute`` ``{key, value}``: some span or resource has ``key`` and
  its value read as a bool equals ``value``; a value of another type reads as
  ``false``, as pdata's ``Value.Bool()`` does.
- ``string_attribute`` ``{key, values, enabled_regex_matching}``: some resource
  attribute ``key``, or some non-empty span attribute ``key``, equals one of
  ``values`` (empty strings in ``values`` are ignored), or with regex matching
  contains a match of one of them (Go's unanchored ``MatchString``; patterns are
  compiled with Python's ``re``, which agrees with RE2 on the plain patterns a
  policy uses). A value of another type reads as ``""``.
- ``status_code`` ``{status_codes}``: some span's status is one of ``OK``,
  ``ERROR``, ``UNSET``.
- ``probabilistic`` ``{sampling_percentage, hash_salt}``: FNV-1a 64 of the salt
  (default ``default-hash-seed``) followed by the 16 trace-id bytes is at most
  ``MaxUint64 * percentage / 100``, computed like Go's ``big.Float`` (64-bit
  mantissa, rounded to nearest even, truncated, clamped to ``[0, MaxUint64]``).

The processor samples a trace when any policy samples it (with no ``drop`` or
inverted policy, the only other inputs to its final decision). Anything this
module does not model (other policy types, ``invert_match``) raises
`UnsupportedPolicy`, so a config change it cannot judge fails loudly instead of
passing silently.

Values may reference the environment as the collector's ``env`` provider does,
``${env:NAME}`` or ``${env:NAME:-default}``; `expand_env` substitutes them, and
the default applies only when the variable is unset.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias

from wedsync_otel.errors import PolicyError, UnsupportedPolicy

__all__ = [
    "DEFAULT_HASH_SALT",
    "BooleanAttributePolicy",
    "Decision",
    "Policy",
    "PolicyError",
    "ProbabilisticPolicy",
    "SampledSpan",
    "StatusCode",
    "StatusCodePolicy",
    "StringAttributePolicy",
    "TailSampler",
    "Trace",
    "UnsupportedPolicy",
    "expand_env",
    "probabilistic_threshold",
    "trace_id_hash",
]

Attributes: TypeAlias = Mapping[str, object]

DEFAULT_HASH_SALT: Final = "default-hash-seed"
"""The contrib probabilistic policy's salt when ``hash_salt`` is empty."""

MAX_UINT64: Final = (1 << 64) - 1
_FNV64_OFFSET: Final = 0xCBF29CE484222325
_FNV64_PRIME: Final = 0x100000001B3
_MANTISSA_BITS: Final = 64  # big.Float takes the precision of 2^64 - 1, its first operand

_ENV_REFERENCE = re.compile(r"\$\$|\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class StatusCode(enum.StrEnum):
    """A span's status code, spelt as in a ``status_code`` policy."""

    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


@dataclass(frozen=True, kw_only=True, slots=True)
class SampledSpan:
    """One span as the tail sampler sees it."""

    name: str
    attributes: Attributes
    status: StatusCode = StatusCode.UNSET
    resource: Attributes = field(default_factory=dict)
    """Attributes of the resource that produced the span."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Trace:
    """Every span of one trace, as the processor holds it when ``decision_wait`` ends."""

    trace_id: bytes
    spans: tuple[SampledSpan, ...]

    def __post_init__(self) -> None:
        if len(self.trace_id) != 16:
            raise ValueError(f"a trace id is 16 bytes, got {len(self.trace_id)}")


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the trace is kept, and the names of the policies that kept it."""

    sampled: bool
    policies: tuple[str, ...]


class Policy(Protocol):
    """One named policy of a ``tail_sampling`` processor."""

    @property
    def name(self) -> str:
        """The policy's ``name`` in the configuration."""
        ...

    def samples(self, trace: Trace) -> bool:
        """Whether this policy alone decides ``Sampled`` for ``trace``."""
        ...


def _bool_of(value: object) -> bool:
    """What pdata's ``Value.Bool()`` reads: the bool, or false for any other type."""
    return value if isinstance(value, bool) else False


def _str_of(value: object) -> str:
    """What pdata's ``Value.Str()`` reads: the string, or empty for any other type."""
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, kw_only=True, slots=True)
class BooleanAttributePolicy:
    """``boolean_attribute``: a resource or span has ``key`` equal to ``value``."""

    name: str
    key: str
    value: bool

    def samples(self, trace: Trace) -> bool:
        """Whether any span's resource, or any span, has the attribute with that value."""
        for span in trace.spans:
            for attributes in (span.resource, span.attributes):
                if self.key in attributes and _bool_of(attributes[self.key]) == self.value:
                    return True
        return False


@dataclass(frozen=True, kw_only=True, slots=True)
class StringAttributePolicy:
    """``string_attribute``: a resource or span attribute ``key`` matches one of ``values``."""

    name: str
    key: str
    values: tuple[str, ...]
    regex: bool = False
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patterns = tuple(re.compile(value) for value in self.values) if self.regex else ()
        object.__setattr__(self, "_patterns", patterns)

    def _matches(self, text: str) -> bool:
        if self.regex:
            return any(pattern.search(text) for pattern in self._patterns)
        return text != "" and text in self.values

    def samples(self, trace: Trace) -> bool:
        """Whether any resource, or any span with a non-empty value, matches."""
        for span in trace.spans:
            if self.key in span.resource and self._matches(_str_of(span.resource[self.key])):
                return True
            if self.key in span.attributes:
                text = _str_of(span.attributes[self.key])
                if text and self._matches(text):
                    return True
        return False


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusCodePolicy:
    """``status_code``: some span's status code is one of ``codes``."""

    name: str
    codes: frozenset[StatusCode]

    def samples(self, trace: Trace) -> bool:
        """Whether any span has one of the status codes."""
        return any(span.status in self.codes for span in trace.spans)


def trace_id_hash(salt: str, trace_id: bytes) -> int:
    """FNV-1a 64 of ``salt`` then ``trace_id``, as the probabilistic policy hashes."""
    value = _FNV64_OFFSET
    for byte in salt.encode() + trace_id:
        value = ((value ^ byte) * _FNV64_PRIME) & MAX_UINT64
    return value


def probabilistic_threshold(percentage: float) -> int:
    """The largest hash sampled at ``percentage``: Go's ``calculateThreshold(percentage / 100)``.

    ``MaxUint64 * ratio`` rounded to a 64-bit mantissa (nearest even), then
    truncated to an integer and clamped to ``[0, MaxUint64]``, like ``big.Float``.
    """
    ratio = percentage / 100
    if math.isnan(ratio):  # Go's big.NewFloat panics on NaN: the collector would not start
        raise PolicyError(f"sampling_percentage is not a number: {percentage!r}")
    if ratio <= 0:
        return 0
    if ratio >= 1:
        return MAX_UINT64
    numerator, denominator = ratio.as_integer_ratio()  # denominator is a power of two
    product = MAX_UINT64 * numerator
    excess = product.bit_length() - _MANTISSA_BITS
    if excess > 0:
        quotient, remainder = divmod(product, 1 << excess)
        half = 1 << (excess - 1)
        if remainder > half or (remainder == half and quotient & 1):
            quotient += 1
        product = quotient << excess
    return min(product // denominator, MAX_UINT64)


@dataclass(frozen=True, kw_only=True, slots=True)
class ProbabilisticPolicy:
    """``probabilistic``: the salted hash of the trace id is at most the threshold."""

    name: str
    sampling_percentage: float
    hash_salt: str = DEFAULT_HASH_SALT

    @property
    def threshold(self) -> int:
        """The largest hash this policy samples."""
        return probabilistic_threshold(self.sampling_percentage)

    def samples(self, trace: Trace) -> bool:
        """Whether the trace id's hash falls under the threshold."""
        return trace_id_hash(self.hash_salt, trace.trace_id) <= self.threshold


class TailSampler:
    """The policies of one ``tail_sampling`` processor; a trace is kept when any samples it."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        if not policies:
            raise PolicyError("tail_sampling.policies: at least one policy is required")
        names = [policy.name for policy in policies]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise PolicyError(f"tail_sampling.policies: duplicate policy names {duplicates}")
        self.policies: tuple[Policy, ...] = tuple(policies)

    @classmethod
    def from_config(
        cls, config: Mapping[str, object], environ: Mapping[str, str] | None = None
    ) -> TailSampler:
        """Build from a ``tail_sampling`` processor's settings, expanding ``${env:...}``."""
        policies = config.get("policies")
        if not isinstance(policies, Sequence) or isinstance(policies, str):
            raise PolicyError("tail_sampling.policies: must be a list of policies")
        env = {} if environ is None else environ
        return cls([_policy(entry, index, env) for index, entry in enumerate(policies)])

    def policy(self, name: str) -> Policy:
        """The policy called ``name``; KeyError if there is none."""
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(name)

    def decide(self, trace: Trace) -> Decision:
        """Keep ``trace`` when any policy samples it; name every policy that does."""
        sampling = tuple(policy.name for policy in self.policies if policy.samples(trace))
        return Decision(sampled=bool(sampling), policies=sampling)


# --- configuration -----------------------------------------------------------------------


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with ``${env:NAME}`` and ``${env:NAME:-default}`` substituted, ``$$`` as ``$``.

    The default applies only when the variable is unset (set but empty stays
    empty), and an unset variable without a default becomes empty, as in the
    collector's ``env`` provider.
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        return default if default is not None else ""

    return _ENV_REFERENCE.sub(substitute, text)


def _setting(value: object, environ: Mapping[str, str]) -> object:
    return expand_env(value, environ) if isinstance(value, str) else value


def _require(settings: Mapping[str, object], key: str, where: str) -> object:
    if key not in settings:
        raise PolicyError(f"{where}.{key}: required")
    return settings[key]


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def _boolean(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise PolicyError(f"{where}: must be true or false, got {value!r}")


def _number(value: object, where: str) -> float:
    if isinstance(value, bool):
        raise PolicyError(f"{where}: must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise PolicyError(f"{where}: must be a number, got {value!r}")


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise PolicyError(f"{where}: must be a list of strings, got {value!r}")
    if not all(isinstance(item, str) for item in value):
        raise PolicyError(f"{where}: must be a list of strings, got {value!r}")
    return tuple(str(item) for item in value)


def _refuse_inversion(settings: Mapping[str, object], where: str) -> None:
    if settings.get("invert_match") not in (None, False):
        raise UnsupportedPolicy(f"{where}.invert_match: inverted decisions are not modelled")


def _policy(entry: object, index: int, environ: Mapping[str, str]) -> Policy:
    where = f"tail_sampling.policies[{index}]"
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{where}: must be a mapping")
    name = _string(_setting(_require(entry, "name", where), environ), f"{where}.name")
    kind = _string(_setting(_require(entry, "type", where), environ), f"{where}.type")
    where = f"tail_sampling.policies[{name}]"
    raw = entry.get(kind, {})
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}.{kind}: must be a mapping")
    settings = {str(key): _setting(value, environ) for key, value in raw.items()}
    inner = f"{where}.{kind}"
    if kind == "boolean_attribute":
        _refuse_inversion(settings, inner)
        return BooleanAttributePolicy(
            name=name,
            key=_string(_require(settings, "key", inner), f"{inner}.key"),
            value=_boolean(_require(settings, "value", inner), f"{inner}.value"),
        )
    if kind == "string_attribute":
        _refuse_inversion(settings, inner)
        return StringAttributePolicy(
            name=name,
            key=_string(_require(settings, "key", inner), f"{inner}.key"),
            values=_strings(_require(settings, "values", inner), f"{inner}.values"),
            regex=_boolean(settings.get("enabled_regex_matching", False), f"{inner}.regex"),
        )
    if kind == "status_code":
        names = _strings(_require(settings, "status_codes", inner), f"{inner}.status_codes")
        if not names:
            raise PolicyError(f"{inner}.status_codes: expected at least one status code")
        try:
            codes = frozenset(StatusCode(code) for code in names)
        except ValueError as exc:
            raise PolicyError(f"{inner}.status_codes: supported: OK, ERROR, UNSET") from exc
        return StatusCodePolicy(name=name, codes=codes)
    if kind == "probabilistic":
        percentage = _number(
            _require(settings, "sampling_percentage", inner), f"{inner}.sampling_percentage"
        )
        salt = settings.get("hash_salt") or DEFAULT_HASH_SALT
        return ProbabilisticPolicy(
            name=name,
            sampling_percentage=percentage,
            hash_salt=_string(salt, f"{inner}.hash_salt"),
        )
    raise UnsupportedPolicy(f"{where}.type: {kind!r} is not modelled by this evaluator")
