#!/usr/bin/env bash
# signal_rank.sh - start an MPI run, wait until its output shows PATTERN, send SIGNAL to
# the process of world rank RANK, and report how long the run took to end from there.
# For test_cli_kill_mpi.c; also usable by hand:
#
#   tests/mpi/signal_rank.sh STOP 1 'moebench: train 10/' mpirun --oversubscribe -np 3 \
#       build-nocuda/moebench train --preset v3-tiny --data synthetic --timeout 4
#
# SIGNAL_RANK_DELAY=S in the environment waits S more seconds after the pattern.
# Prints the run's output, then one line:
#   signal_rank: SIGNAL pid PID (world rank RANK), exit RC after SECONDS s[, left behind]
# "left behind": the signalled process was still alive (stopped or running) 2 s after
# the launcher had returned. The process is always cleaned up here (SIGCONT, SIGKILL), and
# the launcher is ended (timeout(1): exit 124) 90 s after it started. Exit 0 unless the
# pattern never showed (exit 3) or the rank's process was not found (exit 4).
set -u
sig=$1 rank=$2 pattern=$3
shift 3
log=$(mktemp /tmp/signal_rank.XXXXXX)
tag="signal_rank_$$_$RANDOM"
# NOTE: the tag travels in the launcher's environment to every rank it starts here; it
# tells our ranks from any other moebench on the machine
env SIGNAL_RANK_TAG="$tag" timeout -k 5 90 "$@" >"$log" 2>&1 &
launcher=$!

# find_rank prints the pid of the process of world rank $rank of this run.
find_rank() {
	local f p e
	for f in /proc/[0-9]*/environ; do
		p=${f#/proc/}; p=${p%/environ}
		[ "$p" = "$launcher" ] && continue
		e=$( { tr '\0' '\n' <"$f"; } 2>/dev/null) || continue
		grep -qx "SIGNAL_RANK_TAG=$tag" <<<"$e" || continue
		grep -Eqx "(OMPI_COMM_WORLD_RANK|PMI_RANK|PMIX_RANK)=$rank" <<<"$e" && echo "$p" &&
			return
	done
}

for _ in $(seq 600); do
	grep -q -- "$pattern" "$log" && break
	kill -0 "$launcher" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q -- "$pattern" "$log"; then
	kill -KILL "$launcher" 2>/dev/null; wait "$launcher" 2>/dev/null
	cat "$log"; rm -f "$log"
	echo "signal_rank: '$pattern' never showed"
	exit 3
fi
sleep "${SIGNAL_RANK_DELAY:-0}"
pid=$(find_rank)
if [ -z "$pid" ]; then
	kill -KILL "$launcher" 2>/dev/null; wait "$launcher" 2>/dev/null
	cat "$log"; rm -f "$log"
	echo "signal_rank: no process of world rank $rank"
	exit 4
fi
t0=$(date +%s.%N)
kill -"$sig" "$pid"
wait "$launcher"
rc=$?
t1=$(date +%s.%N)
left=""
# NOTE: a process the launcher has just killed may still be on its way out (state R or
# T) when the launcher returns: it is left behind only if still alive 2 s later
for i in $(seq 20); do
	st=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)
	[ -z "$st" ] || [ "$st" = Z ] && break
	[ "$i" = 20 ] && left=", left behind"
	sleep 0.1
done
kill -CONT "$pid" 2>/dev/null
kill -KILL "$pid" 2>/dev/null
cat "$log"; rm -f "$log"
echo "signal_rank: $sig pid $pid (world rank $rank), exit $rc after" \
	"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s$left"
exit 0
