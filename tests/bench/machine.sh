# tests/bench/machine.sh -- sourced by the benchmark scripts.
#   bench_binary SRC BUILD_DIR  sets TB_BINARY to a Release build of SRC in BUILD_DIR
#                               unless TB_BINARY is already set (then measures that)
#   bench_machine BINARY        prints to stdout what every benchmark reports about the
#                               machine it ran on (the caller adds its own lines)
bench_binary() {
    [[ -n "${TB_BINARY:-}" ]] && return 0
    printf 'building Release in %s ...\n' "$2" >&2
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$2" -j2 --target takhin-bridge >/dev/null
    TB_BINARY="$2/takhin-bridge"
}

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
