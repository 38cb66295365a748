#!/usr/bin/env bash
# fetch-debs.sh - download the Debian packages that the GPU machine lacks (Check and
# subunit for the tests, cJSON, OpenBLAS and its Fortran runtime) into .deps/ of this
# checkout. The GPU machine reaches no package registry; scripts/gpu-check.sh unpacks
# these files there into /opt/deps. Run on a Debian 12 machine that reaches its mirrors
# (as root, apt's lists are refreshed when empty). .deps/ is ignored by git.
#
#   scripts/fetch-debs.sh          then carry .deps/ with the tree to the GPU machine
set -euo pipefail
cd "$(dirname "$0")/.."
debs="check libsubunit0 libsubunit-dev libcjson1 libcjson-dev libopenblas0-pthread
      libopenblas-pthread-dev libopenblas-dev libgfortran5"
mkdir -p .deps
cd .deps
if ! compgen -G "/var/lib/apt/lists/*_Packages*" > /dev/null; then
	apt-get update -qq
fi
# NOTE: apt-get download as root warns that it cannot drop privileges; the files land.
# shellcheck disable=SC2086
apt-get download -qq $debs 2>&1 | grep -v 'Download is performed unsandboxed' || true
for p in $debs; do
	ls "${p}"_*.deb > /dev/null 2>&1 || { echo "fetch-debs: $p was not downloaded" >&2; exit 1; }
done
n=$(find . -maxdepth 1 -name '*.deb' | wc -l)
echo "fetch-debs: $n packages in .deps/; scripts/gpu-check.sh unpacks them"
