"""Zero-code setup: ``opentelemetry-instrument`` entry points.

Two ways in, both ending with the same wiring:

- ``OTEL_PYTHON_CONFIGURATOR=wedsync_otel`` selects `WeddingConfigurator`:
  the SDK's own configurator builds the providers from the usual ``OTEL_*``
  variables, then `install` puts the wedding processing in front.
- Beside another distro (``opentelemetry-distro`` or a vendor's), the
  ``opentelemetry_post_instrument`` hook `post_instrument` does the same to
  whatever providers that distro installed.

Installing the package must not change a plain ``opentelemetry-instrument``
run, so the processing is opt-in (`asked`): ``WEDSYNC_OTEL_ENABLED``, else
choosing our configurator. And zero-code setup is pass-through: a bad wedsync
configuration or an internal error costs one log line and the enrichment,
never the SDK's own telemetry or the application.

The trap: a processor passed through the configurator's ``span_processors``
argument, or added with ``add_span_processor``, sits BESIDE the exporters'
batch processors, so an enriched copy would never reach them. The SDK has
no public API to put a processor in front of those already registered, so
`install` swaps the provider's processor tuple for one `WeddingSpanProcessor`
whose downstream holds the original processors, under the SDK's own lock.
Metrics likewise: each periodic reader's exporter is wrapped in a
`PerformanceMetricExporter` (the reader has no public setter for it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider

from wedsync_otel._safety import raise_internal_errors
from wedsync_otel._sdk import (
    SdkConfigurator,
    meter_resource,
    periodic_readers,
    reader_exporter,
    replace_span_processors,
    restore_span_processors,
    set_reader_exporter,
    span_processors,
)
from wedsync_otel.config import (
    CONFIG_FILE_ENV,
    PRIVACY_SETTINGS,
    SETTINGS,
    WeddingConfig,
    load_config,
)
from wedsync_otel.errors import ConfigError
from wedsync_otel.instrumentation.operation_names import protect_operation_names
from wedsync_otel.metrics import PerformanceMetricExporter, WeddingRecorder
from wedsync_otel.metrics.self_metrics import register_self_metrics
from wedsync_otel.processor import WeddingSpanProcessor
from wedsync_otel.sampling import record_every_request

logger = logging.getLogger("wedsync_otel")

ENABLED_ENV: Final = "WEDSYNC_OTEL_ENABLED"
"""``true``: wedding processing with any configurator; ``false``: none; unset: ours only."""

CONFIGURATOR_ENV: Final = "OTEL_PYTHON_CONFIGURATOR"
CONFIGURATOR_NAME: Final = "wedsync_otel"
"""Our ``opentelemetry_configurator`` entry point's name (pyproject.toml)."""

_ON: Final = frozenset({"true", "1", "yes", "on"})
_OFF: Final = frozenset({"false", "0", "no", "off"})
_OFF_NOTE: Final = "wedding enrichment is off, the rest of the telemetry is unchanged"

_ENV_BY_KEY: Final = {s.key: s.env for s in SETTINGS} | {
    f"privacy.{s.key}": s.env for s in PRIVACY_SETTINGS
}
"""A setting's file key to its variable: the environment wins, so a set one is the source."""

_lock = threading.Lock()
_installed: WeddingSpanProcessor | None = None
_zero_code_lock = threading.Lock()
_zero_code_ran = False


def enabled_switch(environ: Mapping[str, str] | None = None) -> bool | None:
    """``WEDSYNC_OTEL_ENABLED`` parsed: True, False, or None when unset or blank.

    Raises `ConfigError` naming the variable and the value for anything else,
    so `asked` can say what was wrong instead of guessing what was meant.
    """
    env = os.environ if environ is None else environ
    text = env.get(ENABLED_ENV, "").strip()
    if not text:
        return None
    if text.lower() in _ON:
        return True
    if text.lower() in _OFF:
        return False
    raise ConfigError(ENABLED_ENV, f"must be true or false (or 1/0, yes/no, on/off), got {text!r}")


def asked(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process asked for the wedding processing under zero-code setup.

    Installing the package is not asking: ``WEDSYNC_OTEL_ENABLED`` decides when
    set, else only ``OTEL_PYTHON_CONFIGURATOR=wedsync_otel`` asks. A value that
    will not parse is logged in one line and counts as off.
    """
    env = os.environ if environ is None else environ
    try:
        switch = enabled_switch(env)
    except ConfigError as exc:
        _report(logging.WARNING, f"wedsync-otel: bad configuration: {exc}; {_OFF_NOTE}")
        return False
    if switch is not None:
        return switch
    return env.get(CONFIGURATOR_ENV) == CONFIGURATOR_NAME  # exactly, as the SDK compares it


def install(
    config: WeddingConfig | None = None, *, tracers_exist: bool = True
) -> WeddingSpanProcessor | None:
    """Put the wedding processing in front of the global providers' exporters, once.

    Returns the processor, or ``None`` when the global tracer provider is not
    the SDK's (nothing to wrap). With ``measure_unsampled`` the provider's
    sampler is wrapped too, so head sampling decides what is exported, not what
    is measured; ``tracers_exist`` says whether tracers were already taken
    (beside another distro) and hold the sampler itself (see
    `record_every_request`). A bad configuration raises `ConfigError` before
    anything is touched; any other failure undoes the wiring before it raises,
    so the SDK's own pipeline is left as it was.
    """
    global _installed  # noqa: PLW0603 - one installation per process, like the global providers
    with _lock:
        if _installed is not None:
            return _installed
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            logger.warning("wedsync-otel: no SDK TracerProvider installed; nothing to enrich")
            return None
        effective = config if config is not None else load_config()
        meter_provider = metrics.get_meter_provider()
        meters = meter_provider if isinstance(meter_provider, MeterProvider) else None
        saved = _Saved(provider, meters)
        try:
            processor = _wire(provider, meters, effective, tracers_exist=tracers_exist)
        except BaseException:
            saved.restore()
            raise
        _installed = processor
        return processor


def _wire(
    provider: TracerProvider,
    meter_provider: MeterProvider | None,
    config: WeddingConfig,
    *,
    tracers_exist: bool,
) -> WeddingSpanProcessor:
    protect_operation_names()  # the contrib's DB metrics: no literal as db.operation.name
    recorder = WeddingRecorder()
    processor = _front_span_processors(provider, config)
    processor.add_verdict_listener(recorder)
    if meter_provider is not None:
        _wrap_metric_exporters(meter_provider, config, recorder)
        register_self_metrics(meter_provider, processor, recorder)
    if config.measure_unsampled:  # last: the in-place sampler route is the one step not undone
        record_every_request(provider, tracers_exist=tracers_exist)
    return processor


class _Saved:
    """What `install` changes, as it was: a failed wiring puts it back."""

    def __init__(self, provider: TracerProvider, meter_provider: MeterProvider | None) -> None:
        self._provider = provider
        self._sampler = provider.sampler
        self._processors = span_processors(provider)
        readers = () if meter_provider is None else periodic_readers(meter_provider)
        self._exporters: list[tuple[PeriodicExportingMetricReader, MetricExporter]] = [
            (reader, reader_exporter(reader)) for reader in readers
        ]

    def restore(self) -> None:
        restore_span_processors(self._provider, self._processors)
        for reader, exporter in self._exporters:
            set_reader_exporter(reader, exporter)
        self._provider.sampler = self._sampler


def _front_span_processors(provider: TracerProvider, config: WeddingConfig) -> WeddingSpanProcessor:
    def front(existing: tuple[SpanProcessor, ...]) -> WeddingSpanProcessor:
        downstream = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
        for span_processor in existing:
            downstream.add_span_processor(span_processor)
        return WeddingSpanProcessor(downstream, config=config)

    return replace_span_processors(provider, front)


def _wrap_metric_exporters(
    meter_provider: MeterProvider, config: WeddingConfig, recorder: WeddingRecorder
) -> None:
    wrapped = False
    for reader in periodic_readers(meter_provider):
        inner = reader_exporter(reader)
        if not isinstance(inner, PerformanceMetricExporter):
            # Only the first reader drains the recorder: two would split its deltas.
            exporter = PerformanceMetricExporter(
                inner,
                config=config,
                recorder=None if wrapped else recorder,
                resource=meter_resource(meter_provider),
            )
            set_reader_exporter(reader, exporter)
            wrapped = True


def _zero_code(*, tracers_exist: bool) -> None:
    """Both entry points end here: decided once per process, never raising into the app.

    Under our configurator the post-instrument hook runs too; the first call
    decides, so a bad setting is reported once, not twice. An internal error
    is still re-raised under pytest, so that bugs fail tests.
    """
    global _zero_code_ran  # noqa: PLW0603 - one zero-code setup per process
    with _zero_code_lock:
        if _zero_code_ran:
            return
        _zero_code_ran = True
    try:
        if asked():
            install(tracers_exist=tracers_exist)
    except ConfigError as exc:
        where = _where(exc, os.environ)
        _report(logging.WARNING, f"wedsync-otel: bad configuration{where}: {exc}; {_OFF_NOTE}")
    except Exception as exc:  # zero-code setup must not stop the application
        failure = f"{type(exc).__name__}: {exc}"
        _report(logging.ERROR, f"wedsync-otel: zero-code setup failed ({failure}); {_OFF_NOTE}")
        logger.debug("wedsync-otel: zero-code setup failure", exc_info=exc)
        if raise_internal_errors():
            raise


def _report(level: int, message: str) -> None:
    """Log one line, and make sure it reaches stderr, where zero-code users look.

    At startup logging is usually unconfigured and the ``lastResort`` handler
    prints it; but with ``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED``
    the only handler is the SDK's, which exports the record and prints nothing.
    """
    line = " ".join(message.split())  # one line, whatever a parser's message held
    logger.log(level, line)
    handlers = _handlers(logger)
    # A stream handler prints it; a NullHandler was put there to silence it.
    local = any(isinstance(h, logging.StreamHandler | logging.NullHandler) for h in handlers)
    if handlers and not local and logger.isEnabledFor(level):
        with contextlib.suppress(OSError, ValueError):  # a closed stderr: nowhere left to say it
            print(line, file=sys.stderr)


def _handlers(start: logging.Logger) -> list[logging.Handler]:
    """The handlers a record from ``start`` reaches; none means ``lastResort`` prints it."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = start
    while current is not None:
        found.extend(current.handlers)
        current = current.parent if current.propagate else None
    return found


def _where(exc: ConfigError, environ: Mapping[str, str]) -> str:
    """Where the bad value came from, when the key alone does not say it."""
    path = environ.get(CONFIG_FILE_ENV) or None
    if exc.key.startswith("WEDSYNC_OTEL_"):
        return ""  # the key is the variable
    if path is not None and exc.key == path:
        return f" in {CONFIG_FILE_ENV}"  # the file itself: missing, unreadable, not TOML
    variable = _ENV_BY_KEY.get(exc.key)
    if variable is not None and environ.get(variable, "").strip():
        return f" from {variable}"  # checked after parsing, under the file's key name
    return "" if path is None else f" in {path}"


class WeddingConfigurator(SdkConfigurator):
    """The SDK's configurator (all ``OTEL_*`` variables), then the wedding processing if asked."""

    def _configure(self, **kwargs: Any) -> None:  # the SDK's signature
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]
        _zero_code(tracers_exist=False)  # before the instrumentations take their tracers


def post_instrument(*args: Any, **kwargs: Any) -> None:  # any entry-point signature
    """``opentelemetry_post_instrument`` hook: wrap whatever another distro installed, if asked."""
    _zero_code(tracers_exist=True)  # the instrumentations took their tracers already
