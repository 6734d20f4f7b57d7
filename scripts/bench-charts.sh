#!/usr/bin/env bash
# Reruns the dict and list comparison benchmarks RUNS times (default 3) and
# redraws their README charts from the outputs: one command for a quiet machine.
#
#   scripts/bench-charts.sh            # dict u64 10 M, dict bytes64 2 M and list 100 M, 3 runs each
#   RUNS=1 N_DICT=100000 N_BYTES=100000 N_LIST=100000 BENCH_DIR=/tmp/b IMG_DIR=/tmp/i scripts/bench-charts.sh  # a quick check
#
# Writes docs/bench/dict-u64-K.json, dict-bytes64-K.json and list-100m-K.json (K = 1..RUNS,
# replacing earlier runs of the same number), then docs/img/dict-ratios.svg and
# docs/img/list-ratios.svg from every docs/bench/dict-u64-*.json and
# list-100m-*.json (the medians over them), and prints the ratio tables.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${RUNS:-3}"
n_dict="${N_DICT:-10000000}"
n_list="${N_LIST:-100000000}"
n_bytes="${N_BYTES:-2000000}"
bench="${BENCH_DIR:-$root/docs/bench}"   # where the JSON outputs go
img="${IMG_DIR:-$root/docs/img}"         # where the charts go
mkdir -p "$bench" "$img"
cd "$root/benches/compare"
cargo build --release
for k in $(seq 1 "$runs"); do
    echo "== run $k of $runs ($(cut -d' ' -f1-3 /proc/loadavg) load)" >&2
    ./target/release/emds-compare dict --n "$n_dict" --workload u64 --json "$bench/dict-u64-$k.json"
    ./target/release/emds-compare dict --n "$n_bytes" --workload bytes64 --json "$bench/dict-bytes64-$k.json"
    ./target/release/emds-compare list --n "$n_list" --json "$bench/list-100m-$k.json"
done
cd "$root"
python3 scripts/charts.py dict "$bench"/dict-u64-*.json --out "$img"
python3 scripts/charts.py list "$bench"/list-100m-*.json --out "$img"
python3 scripts/charts.py dict-table "$bench"/dict-u64-*.json
python3 scripts/charts.py list-table "$bench"/list-100m-*.json
python3 scripts/charts.py metrics-table "$bench"/dict-u64-*.json
python3 scripts/charts.py metrics-table "$bench"/dict-bytes64-*.json
python3 scripts/charts.py metrics-table "$bench"/list-100m-*.json
