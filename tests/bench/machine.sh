# tests/bench/machine.sh -- sourced by the benchmark scripts: what every benchmark
# prints about the machine it ran on. Usage: bench_machine BINARY; prints to stdout
# the lines common to all benchmarks (the caller adds its own).
bench_machine() {
    local binary="$1" build_type
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$(dirname "$binary")/CMakeCache.txt" 2>/dev/null || true)
    echo "## machine"
    echo "date:        $(date -u +%FT%TZ)"
    echo "nproc:       $(nproc)"
    echo "cpu:         $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sort | uniq -c | sed 's/^ *//')"
    echo "memory:      $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel:      $(uname -r)"
    echo "debian:      $(cat /etc/debian_version 2>/dev/null || echo '?')"
    echo "binary:      $binary (CMAKE_BUILD_TYPE=${build_type:-?})"
}
