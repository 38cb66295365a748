#!/usr/bin/env bash
# par-equal-tp.sh - the equality matrix of tensor parallelism on the training step:
# `moebench train` for a few steps under each TP layout below (alone and with DP) against
# the single-rank run of the same preset, printing per layout the largest relative
# difference of the per-step losses (train, MTP, validation) and of the final weights
# (--save gathers the whole tensors; per-tensor relative L2 norm and the largest element
# difference, tests/st_compare.py). CI runs tp2 on v3-tiny and llama3-tiny
# (test_cli_tp_mpi); this runs them all, ranks beyond the cores oversubscribed.
#
#   scripts/par-equal-tp.sh [BUILD_DIR]       exit 1 when a row is over its bound
#
# Bounds as scripts/dp-equal.sh's (FP32 sums in another order: the TP all-reduces of
# partial outputs and input gradients, the cross-entropy's sums over vocabulary slices):
# losses 1e-5 relative, weights 5e-5 per-tensor relative L2. MoE routing is discrete: a
# top-k tie decided by rounding parts the runs legitimately (load_hash shows where;
# losses compared before it, weights only for runs that routed alike throughout).
# --sp rows: sequence parallelism (the residual stream on 1/tp of the tokens, reduce-scatter
# and all-gather in place of the all-reduces) sums in another order again: same bounds.
# `step --sp` checks itself against its FP64 model and fails with --plant-error (exit 1):
# run by hand for tp2 (fp32, bf16, fp8), tp4, pp2 x tp2 (zb-h1) and tp2 x ep2.
# Under --precision bf16/fp8 the 128x128 weight blocks of a slice are not those of the
# whole tensor, so only FP32 is compared here.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
mb=$(cd "${1:-$src/build}" && pwd)/moebench
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d /tmp/mb_tp_equal_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
run="--quiet --data synthetic --steps 4 --batch 8 --seq 32 --val-every 2 --val-batches 2"
for p in v3-tiny llama3-tiny; do
	"$mb" train $run --preset $p --out one-$p.json --save one-$p.safetensors >/dev/null
done
# loss_rel prints the largest relative loss difference over the steps both runs routed
# alike (equal load_hash), and the first step where the routing differs (0: none).
loss_rel() {
	echo "$(python3 "$src/tests/loss_compare.py" "$@") $(python3 -c 'import json, sys
print("%.3f" % json.load(open(sys.argv[1]))["records"][0]["metrics"]["tp_comm_s"])' "$2")"
}
bad=0
printf '%-48s %5s %10s %10s %10s %9s  %s\n' layout ranks loss_rel weight_rel elem_abs tp_comm_s \
	"routing; tensor of weight_rel"
for row in "2:v3-tiny:--tp 2 --etp 2" "4:v3-tiny:--tp 2 --etp 2" \
	   "4:v3-tiny:--tp 2 --etp 2 --zero1" "4:v3-tiny:--tp 2 --etp 2 --zero1 --micro-batch 1" \
	   "4:v3-tiny:--tp 4 --etp 4" "2:llama3-tiny:--tp 2" "4:llama3-tiny:--tp 4" \
	   "4:llama3-tiny:--tp 2 --zero1" "2:v3-tiny:--tp 2 --etp 2 --sp" \
	   "4:v3-tiny:--tp 4 --etp 4 --sp" "4:v3-tiny:--tp 2 --etp 2 --sp --zero1" \
	   "2:llama3-tiny:--tp 2 --sp" "4:llama3-tiny:--tp 4 --sp" \
	   "4:llama3-tiny:--tp 2 --sp --micro-batch 2"; do
	np=${row%%:*} rest=${row#*:}
	p=${rest%%:*} extra=${rest#*:}
	mpirun --oversubscribe -np "$np" "$mb" train $run --preset $p $extra --out tp.json \
		--save tp.safetensors --force >/dev/null
	read -r lr flip tps < <(loss_rel one-$p.json tp.json)
	st=$(python3 "$src/tests/st_compare.py" one-$p.safetensors tp.safetensors)
	wr=$(echo "$st" | awk '/normrel/ {print $2}')
	ea=$(echo "$st" | awk '/maxabs/ {print $2}')
	wt=$(echo "$st" | awk '/normrel/ {print $3}')
	how="same experts every step"
	[ "$p" = llama3-tiny ] && how="dense"
	if [ "$flip" != 0 ]; then
		how="a tie routed differently at step $flip (losses compared before it)"
		wr="n/a" ea="n/a"
	fi
	printf '%-48s %5s %10s %10s %10s %9s  %s\n' "$p $extra" "$np" "$lr" "$wr" "$ea" "$tps" \
		"$how; $wt"
	if ! python3 -c "import sys; sys.exit(0 if $lr <= 1e-5 and ('$wr' == 'n/a' or
		float('$wr') <= 5e-5) else 1)"; then
		bad=1
	fi
done
exit $bad
