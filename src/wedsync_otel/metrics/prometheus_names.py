"""How Prometheus names OTel metrics and attributes: one rule for the bridge and the rules.

The runtime Prometheus bridge and the generated recording rules must agree on
every name, and the bridge must not need the ``ops`` extra (YAML) to know them.
"""

from __future__ import annotations

import re
from typing import Final

_UNITS: Final = {"ms": "milliseconds", "s": "seconds", "1": ""}
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9:]+")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9]+")
_UNIT_ANNOTATION = re.compile(r"\{[^}]*\}")


def prometheus_metric_name(name: str, unit: str, *, monotonic_sum: bool = False) -> str:
    """The name Prometheus gives an OTel metric: sanitised, unit appended, ``_total`` for sums."""
    prom = _INVALID_NAME.sub("_", name)
    suffix = _UNITS.get(unit, _INVALID_NAME.sub("_", _UNIT_ANNOTATION.sub("", unit)))
    if suffix and not prom.endswith(f"_{suffix}"):
        prom = f"{prom}_{suffix}"
    if monotonic_sum and not prom.endswith("_total"):
        prom = f"{prom}_total"
    return prom


def prometheus_label_name(key: str) -> str:
    """The label Prometheus gives an OTel attribute: every run of other characters is ``_``."""
    return _INVALID_LABEL.sub("_", key)
