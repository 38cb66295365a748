#!/usr/bin/env bash
# par-equal-pp.sh - the equality matrix of the pipeline-parallel training step: `moebench
# train` on v3-tiny (4 layers) for a few steps, 8 sequences in micro-batches of 2, under
# each layout below against the single-rank run with the same micro-batch, printing per
# layout the largest relative difference of the per-step losses (train, MTP, validation)
# and of the final weights (--save gathers the stages; per-tensor relative L2 norm and
# the largest element difference, tests/st_compare.py), and the run's bubble per step
# (slowest rank, measured / simulated from the run's own op times). CI runs pp2 1f1b and
# dualpipe (test_cli_pp_mpi); this runs every schedule, ranks beyond the cores
# oversubscribed (the bubble figures of such rows are not one core per rank).
#
#   scripts/par-equal-pp.sh [BUILD_DIR]       exit 1 when a row is over its bound
#   PP_ROWS="4:--pp 4 --schedule zb-h1;..." scripts/par-equal-pp.sh   those rows alone
# A row is RANKS:OPTIONS; without a --micro-batch of its own it takes 2 (DualPipe needs
# at least 2 PP micro-batches: its 4-rank rows take 1).
#
# Bounds as scripts/dp-equal.sh: losses 1e-5 relative, weights 5e-5 per-tensor relative
# L2 (FP32 sums in another order); rows whose routing parted at a rounding-level top-k
# tie compare losses before it and not the weights.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
mb=$(cd "${1:-$src/build}" && pwd)/moebench
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d /tmp/mb_pp_equal_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
run="--quiet --preset v3-tiny --data synthetic --steps 4 --batch 8 --seq 32 --val-every 2 --val-batches 2"
# reference runs one rank with the row's micro-batch (another micro-batch size sums in
# another order too: one_<m>.json, made once)
reference() {
	[ -e "one_$1.json" ] || "$mb" train $run --micro-batch "$1" --out "one_$1.json" \
		--save "one_$1.safetensors" >/dev/null
}
loss_rel() {
	python3 "$src/tests/loss_compare.py" "$@"
}
bubble() {
	python3 - "$1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["records"][0]["metrics"]
print("%.1f/%.1f" % (1e3 * m["pp_bubble_s"], 1e3 * m["pp_bubble_sim_s"]))
PY
}
bad=0
printf '%-36s %5s %10s %10s %10s %14s  %s\n' layout ranks loss_rel weight_rel elem_abs \
	bubble_ms routing
rows=("2:--pp 2 --schedule gpipe" "2:--pp 2 --schedule 1f1b"
	"2:--pp 2 --schedule interleaved --chunks 2" "2:--pp 2 --schedule zb-h1"
	"2:--pp 2 --schedule dualpipe" "2:--pp 2 --schedule dualpipev"
	"4:--pp 2 --schedule 1f1b" "4:--pp 2 --schedule 1f1b --zero1"
	"4:--pp 2 --schedule interleaved --chunks 2" "4:--pp 2 --schedule zb-h1 --zero1"
	"4:--pp 2 --schedule dualpipe --micro-batch 1"
	"4:--pp 2 --schedule dualpipev --zero1 --micro-batch 1"
	"4:--pp 4 --schedule 1f1b" "4:--pp 4 --schedule gpipe"
	"4:--pp 4 --schedule zb-h1" "4:--pp 4 --schedule dualpipe --micro-batch 1")
if [ -n "${PP_ROWS:-}" ]; then
	IFS=';' read -r -a rows <<<"$PP_ROWS"
fi
for row in "${rows[@]}"; do
	np=${row%%:*} extra=${row#*:}
	case "$extra" in *--micro-batch*) ;; *) extra="$extra --micro-batch 2" ;; esac
	m=$(echo "$extra" | sed 's/.*--micro-batch \([0-9]*\).*/\1/')
	reference "$m"
	mpirun --oversubscribe -np "$np" "$mb" train $run $extra --out pp.json \
		--save pp.safetensors --force >/dev/null
	read -r lr flip < <(loss_rel "one_$m.json" pp.json)
	st=$(python3 "$src/tests/st_compare.py" "one_$m.safetensors" pp.safetensors)
	wr=$(echo "$st" | awk '/normrel/ {print $2}')
	ea=$(echo "$st" | awk '/maxabs/ {print $2}')
	how="same experts every step"
	if [ "$flip" != 0 ]; then
		how="a tie routed differently at step $flip (losses compared before it)"
		wr="n/a" ea="n/a"
	fi
	pp=$(echo "$extra" | awk '{print $2}')
	printf '%-36s %5s %10s %10s %10s %14s  %s\n' "pp$pp x dp$((np / pp)) ${extra#--pp $pp }" \
		"$np" "$lr" "$wr" "$ea" "$(bubble pp.json)" "$how"
	if ! python3 -c "import sys; sys.exit(0 if $lr <= 1e-5 and ('$wr' == 'n/a' or
		float('$wr') <= 5e-5) else 1)"; then
		bad=1
	fi
done
exit $bad
