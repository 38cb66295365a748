#!/usr/bin/env bash
# ep-overlap-equal.sh - `moebench train --ep-overlap` (the forward of micro-batch j+1
# beside the backward of j, EP dispatch/combine posted non-blocking and waited for after
# the other chunk computed) against the same run without it, for a few EP layouts:
# the per-step losses must be the same doubles and the --save files the same bytes (the
# overlap changes when the work runs, not the arithmetic). Prints per layout the median
# step time and the slowest rank's EP time per step, exposed and hidden (median over the
# steps after the first), of both runs. CI runs the ep2 row (test_cli_ep_overlap_mpi).
#
#   scripts/ep-overlap-equal.sh [BUILD_DIR]      exit 1 when a row is not identical
#
# On a machine with fewer cores than ranks the step times compare oversubscribed runs:
# read them with the load (uptime) beside them.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
mb=$(cd "${1:-$src/build}" && pwd)/moebench
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d /tmp/mb_ep_overlap_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
run="--quiet --preset v3-tiny --data synthetic --steps 5 --batch 8 --seq 32 --val-every 5 --val-batches 1"
# figures prints the median step time (the per-step lines), exposed and hidden EP ms
figures() {
	python3 - "$1" "$2" <<'PY'
import json, re, statistics, sys
c = [p for p in json.load(open(sys.argv[1]))["summary"]["train"]["curve"] if p["step"] > 1]
ms = [float(m.group(1)) for m in re.finditer(r"\|\s+([0-9.]+) ms \|", open(sys.argv[2]).read())]
med = lambda v: statistics.median(v) if v else 0.0
print("%.0f %.0f %.0f" % (med(ms[1:]), med([p.get("ep_ms", 0) for p in c]),
			  med([p.get("ep_hidden_ms", 0) for p in c])))
PY
}
bad=0
uptime
printf '%-44s %5s %9s  %-22s %-22s\n' layout ranks identical "plain step/ep ms" "overlap step/exp/hid ms"
for row in "2:--ep 2 --micro-batch 2" "2:--ep 2 --micro-batch 1" "2:--ep 2 --micro-batch 1 --zero1" \
	   "2:--ep 2 --micro-batch 1 --dispatch bf16" "4:--ep 4 --micro-batch 1" \
	   "4:--ep 4 --ranks-per-node 2 --micro-batch 1" "4:--ep 2 --micro-batch 1"; do
	np=${row%%:*} extra=${row#*:}
	mpirun --oversubscribe -np "$np" "$mb" train $run $extra --out a.json --save a.safetensors \
		--force >a.log
	mpirun --oversubscribe -np "$np" "$mb" train $run $extra --ep-overlap --out b.json \
		--save b.safetensors --force >b.log
	same=yes
	cmp -s a.safetensors b.safetensors || same=no
	python3 -c 'import json, sys
c = [json.load(open(f))["summary"]["train"]["curve"] for f in sys.argv[1:]]
sys.exit(any(a[k] != b[k] for a, b in zip(*c) for k in ("loss", "mtp_loss", "val_loss")))' \
		a.json b.json || same=no
	read -r pa ea ha < <(figures a.json a.log)
	read -r pb eb hb < <(figures b.json b.log)
	printf '%-44s %5s %9s  %-22s %-22s\n' "$extra" "$np" "$same" "$pa / $ea" "$pb / $eb / $hb"
	[ "$same" = yes ] || bad=1
done
uptime
exit $bad
