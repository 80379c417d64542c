"""The compiled core: a run tests the build it says it does, pure Python or mypyc.

`make unit` runs every test on the pure-Python package, the fallback every
platform gets; `make unit-compiled` runs them again on the wheel that the
mypyc build hook makes, with ``WEDSYNC_OTEL_EXPECT_COMPILED=1``. Without this
check a stray ``.so`` beside the sources, or a PYTHONPATH that missed, would
make one run test the other's build.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
EXPECT_COMPILED = os.environ.get("WEDSYNC_OTEL_EXPECT_COMPILED") == "1"


def compiled_modules() -> list[str]:
    """The modules pyproject.toml's mypyc hook compiles, as import names."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    hook = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    return [
        ".".join(Path(path).relative_to("src").with_suffix("").parts) for path in hook["include"]
    ]


def is_extension(module: str) -> bool:
    loaded = importlib.import_module(module)
    assert loaded.__file__ is not None
    return loaded.__file__.endswith(tuple(EXTENSION_SUFFIXES))


@pytest.mark.parametrize("module", compiled_modules())
def test_each_core_module_is_the_build_this_run_tests(module: str) -> None:
    """Compiled in the compiled run, pure Python in the pure one: never a mix."""
    assert is_extension(module) is EXPECT_COMPILED


def test_the_rest_of_the_package_stays_pure_python() -> None:
    """Only the per-span core is compiled; the privacy package stays source for the collector.

    The rotel processor loads ``privacy`` by file path in the collector's own
    interpreter, and config, CLI and exporters gain nothing from compiling.
    """
    for module in ("wedsync_otel.config", "wedsync_otel.cli.main", "wedsync_otel.privacy.values"):
        assert not is_extension(module), module


def test_the_core_list_names_the_modules_every_span_passes_through() -> None:
    """The processor and the stages it calls on each span are in the hook's list."""
    core = set(compiled_modules())
    per_span = {
        "wedsync_otel.processor",
        "wedsync_otel.request_judge",
        "wedsync_otel.child_spans",
        "wedsync_otel.rules",
        "wedsync_otel.calendar",
        "wedsync_otel.rollup",
        "wedsync_otel.metrics.recording",
    }
    assert per_span <= core, per_span - core
