#!/usr/bin/env bash
# pp-bubble.sh - the pipeline bubble of the real training step against the simulator:
# `moebench train --pp 2` on v3-tiny, one core per rank (mpirun --bind-to core, 2 ranks on
# a 2-core machine, OpenMP and OpenBLAS on one thread each), for each schedule the step
# runs, printing per rank the idle time per step measured by the executor (step span
# minus the rank's busy time) and the simulator's bubble for the same plan fed the run's
# own op times (op by op) and message time, and the slowest rank's deviation.
#
#   scripts/pp-bubble.sh [BUILD_DIR] [extra train options]
#
# The figures are only as clean as the cores: other processes on them show as idle time
# the simulator cannot predict (the script prints the load average beside them).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
mb=$(cd "${1:-$src/build}" && pwd)/moebench
shift || true
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d /tmp/mb_pp_bubble_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
run="--quiet --preset v3-tiny --data synthetic --steps 6 --batch 8 --seq 128 --micro-batch 1 --val-every 100 --val-batches 1"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(getconf _NPROCESSORS_ONLN)"
for s in "gpipe" "1f1b" "interleaved --chunks 2" "zb-h1" "dualpipe" "dualpipev"; do
	mpirun --bind-to core -np 2 "$mb" train $run "$@" --pp 2 --schedule $s --out b.json \
		--force | grep '^pipeline:'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
