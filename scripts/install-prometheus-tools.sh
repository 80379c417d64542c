#!/bin/sh
# Install promtool and amtool from Debian when either is missing; do nothing when both are there.
#
#   promtool  comes with the `prometheus` package
#   amtool    comes with the `prometheus-alertmanager` package
#
# The tests in tests/test_prometheus_rules.py run both tools (and fail instead of skipping under
# CI=true). Installing the packages also installs the Prometheus and Alertmanager servers with their
# systemd units; on a machine with systemd, Debian starts them (ports 9090 and 9093).
#
# Exit status: 0 when both tools are on PATH afterwards, 1 otherwise, with the reason on stderr.
set -eu

fail() {
    echo "install-prometheus-tools: error: $*" >&2
    exit 1
}

packages=""
command -v promtool >/dev/null 2>&1 || packages="$packages prometheus"
command -v amtool >/dev/null 2>&1 || packages="$packages prometheus-alertmanager"

if [ -z "$packages" ]; then
    echo "install-prometheus-tools: promtool and amtool are already installed"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
    fail "missing:$packages, and there is no apt-get here (Debian or Ubuntu needed); install" \
        "promtool (Prometheus) and amtool (Alertmanager) another way and put them on PATH"

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
        fail "installing$packages needs root: run this script as root or install sudo"
    sudo="sudo"
fi

echo "install-prometheus-tools: installing$packages with apt-get"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # $sudo and $packages are word lists on purpose
$sudo apt-get update || fail "apt-get update failed (no network, or no apt sources?)"
# shellcheck disable=SC2086
$sudo apt-get install -y --no-install-recommends $packages ||
    fail "apt-get install$packages failed"

command -v promtool >/dev/null 2>&1 || fail "promtool is still not on PATH after installing"
command -v amtool >/dev/null 2>&1 || fail "amtool is still not on PATH after installing"
echo "install-prometheus-tools: done"
