#!/usr/bin/env bash
# scripts/install-deps.sh -- install everything takhin-bridge needs to build,
# test and run a local Kafka, from Debian packages (Debian 12 / bookworm).
#
# Idempotent: only missing packages are installed ("apt-get update" runs only
# when something is missing), so a second run is fast and prints
# "all dependencies present". Runs as root, or via sudo otherwise.
#
# Afterwards it caches the Kafka jars with "scripts/local-kafka fetch"
# (Maven Central via mvn); skip that with TB_SKIP_KAFKA_FETCH=1.

set -euo pipefail

PACKAGES=(
    # --- build
    build-essential
    cmake
    pkg-config
    git
    librdkafka-dev
    libwebsockets-dev
    libjson-c-dev
    libconfig-dev
    # --- test
    libcmocka-dev
    kcat
    python3
    python3-pytest
    python3-websockets
    python3-confluent-kafka   # tests/integration/conftest.py (Kafka client)
    python3-yaml              # tests/integration/test_deploy.py (Kubernetes manifests)
    procps
    iproute2
    # --- local kafka (scripts/local-kafka: JVM + Maven to fetch the jars)
    openjdk-17-jre-headless
    maven
    ca-certificates
    curl
)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

msg() { printf 'install-deps: %s\n' "$*" >&2; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

installed() { # installed PKG -> 0 if dpkg says "install ok installed"
    local st
    st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$st" == "install ok installed" ]]
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    die "this script needs a Debian/Ubuntu system (dpkg-query and apt-get)"
fi

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    msg "all dependencies present"
else
    SUDO=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 \
            || die "not root and sudo is not available; run as root to install: ${missing[*]}"
        SUDO=(sudo)
    fi
    APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
         -o DPkg::Lock::Timeout=600 -y -q)

    msg "missing packages: ${missing[*]}"
    # apt-get update holds the lists lock, which DPkg::Lock::Timeout does
    # not cover: retry while another apt run holds it.
    ok=0
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if "${APT[@]}" update; then
            ok=1
            break
        fi
        msg "apt-get update failed (attempt $attempt; apt may be locked), retrying in 15 s"
        sleep 15
    done
    ((ok)) || die "apt-get update failed"

    "${APT[@]}" install --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"

    still=()
    for p in "${missing[@]}"; do
        installed "$p" || still+=("$p")
    done
    ((${#still[@]} == 0)) || die "still missing after apt-get install: ${still[*]}"
    msg "installed: ${missing[*]}"
fi

if [[ "${TB_SKIP_KAFKA_FETCH:-0}" == 1 ]]; then
    msg "TB_SKIP_KAFKA_FETCH=1: not fetching the Kafka jars"
else
    "$SCRIPT_DIR/local-kafka" fetch \
        || die "caching the Kafka jars failed (scripts/local-kafka fetch); set TB_SKIP_KAFKA_FETCH=1 to skip"
fi
