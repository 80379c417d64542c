#!/usr/bin/env bash
# The compiled core: the wheel that the mypyc build hook makes, unpacked into OUT for PYTHONPATH.
# Built from a copy of the project, because hatch-mypyc leaves its .so files beside the sources,
# where the editable install would pick them up and the pure-Python tests would test them.
# Usage: scripts/build-compiled.sh PYTHON OUT
set -euo pipefail
python=$1
out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/project" "$work/wheel"
cp -r pyproject.toml README.md src "$work/project/"
find "$work/project/src" -name '__pycache__' -prune -exec rm -rf {} +
HATCH_BUILD_HOOK_ENABLE_MYPYC=1 "$python" -m pip wheel --quiet --no-deps --no-build-isolation \
    --wheel-dir "$work/wheel" "$work/project"
rm -rf "$out"
mkdir -p "$out"
"$python" -m zipfile -e "$work"/wheel/wedsync_otel-*.whl "$out"
touch "$out/.built"
