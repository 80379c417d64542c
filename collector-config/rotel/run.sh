#!/bin/sh
# Start rotel in the foreground with rotel.env and the WedSync trace processor.
#
#   collector-config/rotel/run.sh
#
# Needs a Python environment with `wedsync-otel` and `rotel` installed: WEDSYNC_PYTHON names
# its interpreter (default: python3). rotel's agent embeds the system's libpython3.11, so the
# processor runs there with the standard library only. Variables already set win over
# rotel.env, so ROTEL_OTLP_EXPORTER_ENDPOINT=http://gateway:4317 run.sh works as expected.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
python=${WEDSYNC_PYTHON:-python3}

while IFS= read -r line || [ -n "$line" ]; do
    case $line in
        '' | '#'*) continue ;;
    esac
    name=${line%%=*}
    eval "already=\${$name+set}"
    if [ -z "$already" ]; then
        export "$line"
    fi
done < "$here/rotel.env"

if [ -z "${ROTEL_OTLP_WITH_TRACE_PROCESSOR:-}" ]; then
    ROTEL_OTLP_WITH_TRACE_PROCESSOR=$("$python" -c \
        'from wedsync_otel.collector import rotel_processor_path; print(rotel_processor_path())')
    export ROTEL_OTLP_WITH_TRACE_PROCESSOR
fi

# The agent binary ships inside the `rotel` wheel; find_spec locates it without importing.
agent=${ROTEL_AGENT:-$("$python" -c \
    'import importlib.util, pathlib; spec = importlib.util.find_spec("rotel"); print(pathlib.Path(spec.origin).parent / "rotel-agent")')}

exec "$agent" start
