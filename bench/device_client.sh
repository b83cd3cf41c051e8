#!/usr/bin/env bash
# Issue 15's client benchmarks on a many-core box (the `device` machine: 16 cores), in one go.
# No GPU is used: the servers are bench.fast_server processes. Writes every figure under
# ${OUT:-./device-out}. Needs Python >= 3.11 with the runtime packages (on the device they
# travel as wheels in .whl/, installed into /tmp/site first) and, since nothing is installed
# there, profiles/ made visible as the package engine.workload.builtin:
#
#   ln -sfn "$PWD/profiles" engine/workload/builtin
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site bench/device_client.sh
#
# 1. one process against the raw client, alternating 3 rounds, and the loop lag at 256
#    flat-out streams (bench.per_process);
# 2. 1, 2, 4, 8 workers at 64 flat-out streams each against 6 server processes: tokens/s
#    against linear;
# 3. the same worker counts at 64 paced streams each (one token per stream every 20 ms,
#    16 tokens a request, so ~30 requests per stream): merged TTFT p50 against one
#    worker's at equal load per worker.
set -uo pipefail
out="${OUT:-./device-out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
{
    date -u
    nproc
    grep -m1 "model name" /proc/cpuinfo
    free -g | head -2
    "$py" --version
} >"$out/machine.txt" 2>&1
"$py" -m bench.per_process --rounds 3 --seconds 4 --json "$out/per_process.json" 2>&1 \
    | tee "$out/per_process.txt"
"$py" -m bench.scale_out --workers 1,2,4,8 --servers 6 --per-worker 64 --seconds 6 \
    --repeats 2 --json "$out/scale_flat.json" 2>&1 | tee "$out/scale_flat.txt"
"$py" -m bench.scale_out --workers 1,2,4,8 --servers 4 --per-worker 64 --seconds 8 \
    --repeats 3 --max-tokens 16 --mode tick --itl-ms 20 --json "$out/scale_paced.json" 2>&1 \
    | tee "$out/scale_paced.txt"
