"""Settings declared once: a dataclass field that also names its variable, parser and meaning.

A settings dataclass declares each field with `setting()` instead of a plain
default: the field's name is the key (in the TOML file and in `ConfigError`),
and the call holds the environment variable, the `Kind` that parses it, the
default, the validation and a one-line ``doc``. `declared()` reads the
declarations back as `Setting` rows, from which the loaders in `config` and
`export_tuning` parse files and the environment. A dataclass this package
does not declare itself (`PrivacyPolicy`) gets its rows from `field_setting()`,
which takes the default from the field, so nothing is said twice.

Pure: no OpenTelemetry import.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeAlias, TypeVar

from wedsync_otel.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

logger = logging.getLogger("wedsync_otel")

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

Check: TypeAlias = Callable[[str, object], None]
"""Validates a value already parsed (or passed in code), raising `ConfigError` naming the key."""

_DECLARATION: Final = "wedsync_otel.setting"
"""The dataclass field metadata key that holds a setting's declaration."""


@dataclass(frozen=True, slots=True)
class Kind(Generic[T_co]):
    """How one type of value is read: from a parsed TOML value and from a variable's text."""

    from_file: Callable[[str, object], T_co]
    from_env: Callable[[str, str], T_co]
    noun: str
    """What a value must be, as in "is not a whole number"."""


def _file_bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")
    return value


def _env_bool(key: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(key, f"must be true or false, got {text!r}")


def _file_number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"must be a number, got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(key, "is too large") from None


def _env_number(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(key, f"must be a number, got {text!r}") from None


def _file_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"must be a whole number, got {value!r}")
    return value


def _env_int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(key, f"must be a whole number, got {text!r}") from None


def _file_str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {value!r}")
    return value


def _env_str(key: str, text: str) -> str:
    return text.strip()


def _file_months(key: str, value: object) -> frozenset[int]:
    if not isinstance(value, list) or not all(
        isinstance(m, int) and not isinstance(m, bool) for m in value
    ):
        raise ConfigError(key, f"must be a list of month numbers 1-12, got {value!r}")
    return frozenset(value)


def _env_months(key: str, text: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(key, f"must be comma-separated month numbers, got {text!r}") from None


def _file_strings(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(key, f"must be a list of strings, got {value!r}")
    return tuple(value)


def _env_strings(key: str, text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


BOOL: Final = Kind(_file_bool, _env_bool, "true or false")
"""``true``/``false`` in a file; 1/0, true/false, yes/no, on/off (any case) in a variable."""
NUMBER: Final = Kind(_file_number, _env_number, "a number")
"""An integer or float, read as a float."""
WHOLE: Final = Kind(_file_int, _env_int, "a whole number")
"""An integer."""
TEXT: Final = Kind(_file_str, _env_str, "a string")
"""A string; a variable's surrounding whitespace is dropped."""
MONTHS: Final = Kind(_file_months, _env_months, "month numbers")
"""A list of month numbers in a file, comma-separated in a variable."""
STRINGS: Final = Kind(_file_strings, _env_strings, "a list of strings")
"""A list of strings in a file, comma-separated in a variable (blanks dropped)."""
STRING_SET: Final = Kind(
    lambda key, value: frozenset(_file_strings(key, value)),
    lambda key, text: frozenset(_env_strings(key, text)),
    "a list of strings",
)
"""As `STRINGS`, kept as a frozenset."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Declaration:
    """What `setting()` stores in the field's metadata: all but the key and the default."""

    env: str
    kind: Kind[object]
    doc: str
    check: Check | None
    in_file: bool
    lenient: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Setting(Generic[T]):
    """One setting: its key, variable, parser, default, validation and meaning."""

    key: str
    """The dataclass field, the key in the file and the key `ConfigError` names."""
    env: str
    """The environment variable that sets it."""
    kind: Kind[T]
    default: object
    doc: str
    check: Check | None = None
    in_file: bool = True
    """False: the variable only (a secret), and a file that sets it is refused."""
    lenient: bool = False
    """True: a variable that will not parse is logged and ignored, as the SDK treats ``OTEL_*``."""

    def from_file(self, key: str, value: object) -> T:
        """The value a file holds, parsed; ``key`` is how the error names it."""
        if not self.in_file:
            raise ConfigError(key, f"set it through {self.env}, not in a file")
        return self.kind.from_file(key, value)

    def from_env(self, key: str, text: str) -> T:
        """A variable's text, parsed; ``key`` is how the error names it (the variable)."""
        return self.kind.from_env(key, text)

    def from_environ(self, environ: Mapping[str, str]) -> T | None:
        """The variable's value, or None when it is unset or blank (or, if lenient, bad)."""
        text = environ.get(self.env)
        if text is None or not text.strip():
            return None
        if not self.lenient:
            return self.from_env(self.env, text)
        try:
            return self.from_env(self.env, text)
        except ConfigError:
            logger.warning(
                "wedsync-otel: %s=%r is not %s; using the default", self.env, text, self.kind.noun
            )
            return None

    def validate(self, value: object) -> None:
        """Raise `ConfigError` naming the key if ``value`` is unusable."""
        if self.check is not None:
            self.check(self.key, value)


def setting(
    *,
    env: str,
    kind: Kind[T],
    default: T,
    doc: str,
    check: Check | None = None,
    in_file: bool = True,
    lenient: bool = False,
    repr: bool = True,
) -> T:
    """A dataclass field's default that declares the field as a setting (see `declared`)."""
    declaration = _Declaration(
        env=env, kind=kind, doc=doc, check=check, in_file=in_file, lenient=lenient
    )
    return dataclasses.field(default=default, repr=repr, metadata={_DECLARATION: declaration})


def declared(cls: type[DataclassInstance]) -> tuple[Setting[Any], ...]:
    """The settings a dataclass declares with `setting()`, in field order."""
    found: list[Setting[Any]] = []
    for field in dataclasses.fields(cls):
        declaration = field.metadata.get(_DECLARATION)
        if isinstance(declaration, _Declaration):
            found.append(
                Setting(
                    key=field.name,
                    env=declaration.env,
                    kind=declaration.kind,
                    default=field.default,
                    doc=declaration.doc,
                    check=declaration.check,
                    in_file=declaration.in_file,
                    lenient=declaration.lenient,
                )
            )
    return tuple(found)


def field_setting(
    cls: type[DataclassInstance],
    key: str,
    *,
    env: str,
    kind: Kind[T],
    doc: str,
    in_file: bool = True,
) -> Setting[T]:
    """A setting for a field of a dataclass declared elsewhere; its default is the field's."""
    (field,) = (f for f in dataclasses.fields(cls) if f.name == key)
    default: object = field.default
    if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    return Setting(key=key, env=env, kind=kind, default=default, doc=doc, in_file=in_file)


def from_environment(
    settings: Iterable[Setting[Any]], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The settings whose variables are set in ``environ``, parsed, by key."""
    found: dict[str, Any] = {}
    for item in settings:
        value = item.from_environ(environ)
        if value is not None:
            found[item.key] = value
    return found
