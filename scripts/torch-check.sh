#!/usr/bin/env bash
# torch-check.sh - moebench's trainable model against its eager PyTorch twin
# (scripts/torch_step.py), the CTest torch_step: for v3-tiny and llama3-tiny, a checkpoint
# trained by `moebench train` loads in PyTorch and gives moebench's loss of a `moebench
# step` batch (FP32 relative error <= 1e-5, same expert selection); two AdamW steps in
# PyTorch, saved back, load in `moebench step --init-from` and give PyTorch's loss; and
# the check fails (exit 1) on the wrong weights.
#
#   scripts/torch-check.sh build/moebench [PYTHON]    # PYTHON: one with torch, safetensors
#
# Exit 0 pass, 1 a failure, 77 (CTest: skipped) when PYTHON cannot import torch and
# safetensors: CI has no torch.
set -euo pipefail
mb=$1
py=${2:-python3}
if ! "$py" -c 'import torch, safetensors' 2>/dev/null; then
	echo "torch-check: skipped: $py cannot import torch and safetensors"
	exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
mb=$(cd "$(dirname "$mb")" && pwd)/$(basename "$mb")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
ts() { "$py" "$here/torch_step.py" "$@"; }
step="--backend cpu --quiet --iters 1 --warmup 0 --batch 2 --seq 48 --force"
for preset in v3-tiny llama3-tiny; do
	echo "== $preset"
	"$mb" train --backend cpu --quiet --preset $preset --data synthetic --steps 10 --batch 2 \
		--seq 48 --save t.safetensors --out t.json --force >/dev/null
	"$mb" step $step --preset $preset --init-from t.safetensors --dump-batch t-batch.json \
		--out s.json >/dev/null
	ts check t-batch.json t.safetensors --train-steps 2 --save-back back.safetensors
	"$mb" step $step --preset $preset --init-from back.safetensors --dump-batch b-batch.json \
		--out s2.json >/dev/null
	ts check b-batch.json back.safetensors
	# the wrong weights for that batch: the check must fail
	if ts check b-batch.json t.safetensors >/dev/null; then
		echo "torch-check: FAIL: other weights passed the check"
		exit 1
	fi
done
echo "torch-check: pass"
