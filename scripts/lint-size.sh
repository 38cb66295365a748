#!/usr/bin/env bash
# lint-size.sh - the size gate `make test` runs: no source file over 800 lines, no
# function over 80 lines (STYLE.md aims at 600 and 40). A larger one needs a `NOTE:`
# saying why (in the file's first 30 lines, or the 12 lines above the function) and an
# entry in scripts/lint-size.allow ("path" or "path:function").
#
#   scripts/lint-size.sh [ROOT]      exit 0 clean, 1 with one line per offence
#
# A function is what the house style writes: a line that is exactly "{" after its
# signature, up to the next line that is exactly "}". Struct and array initialisers
# open their brace at the end of a line, so they are not counted.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
MAX_FILE=${MAX_FILE:-800}
MAX_FUNC=${MAX_FUNC:-80}
allow=scripts/lint-size.allow
allowed() { [ -f "$allow" ] && grep -qxF "$1" <(sed 's/[[:space:]]*#.*//' "$allow"); }
bad=0
files=$(git ls-files -- 'harness' 'kernels' 'model' 'benchmarks' 'tests' 2>/dev/null |
	grep -E '\.(c|h|cu|cuh|cpp)$' || true)
[ -n "$files" ] || files=$(find harness kernels model benchmarks tests -type f \
	\( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.cpp' \))
for f in $files; do
	n=$(wc -l < "$f")
	if [ "$n" -gt "$MAX_FILE" ]; then
		if allowed "$f" && head -n 30 "$f" | grep -q 'NOTE:'; then :; else
			echo "$f: $n lines (> $MAX_FILE): split it, or add a NOTE: in its header and \"$f\" to $allow"
			bad=1
		fi
	fi
	# name:start:length of every function body longer than MAX_FUNC
	while IFS=: read -r name start len; do
		[ -n "$name" ] || continue
		from=$((start > 12 ? start - 12 : 1))
		if allowed "$f:$name" && sed -n "${from},${start}p" "$f" | grep -q 'NOTE:'; then continue; fi
		echo "$f:$start: function $name is $len lines (> $MAX_FUNC): split it, or add a NOTE: above it and \"$f:$name\" to $allow"
		bad=1
	done < <(awk -v max="$MAX_FUNC" '
		/^\{[[:space:]]*$/ && !inbody { inbody = 1; start = NR; name = sig; next }
		/^\}[[:space:]]*$/ && inbody {
			inbody = 0
			if (NR - start - 1 > max) printf "%s:%d:%d\n", name, start, NR - start - 1
			next
		}
		!inbody && /[A-Za-z_][A-Za-z_0-9]*[[:space:]]*\(/ && !/^[[:space:]]*(#|\/\*|\*)/ {
			line = $0
			gsub(/__(launch_bounds|attribute)__[[:space:]]*\(+[^)]*\)+/, "", line)
			sub(/\(.*/, "", line)
			n = split(line, w, /[^A-Za-z_0-9]+/)
			for (i = n; i >= 1; i--) if (w[i] != "") { sig = w[i]; break }
		}' "$f")
done
if [ "$bad" = 0 ]; then
	echo "lint-size: $(echo "$files" | wc -w) files, none over $MAX_FILE lines, no function over $MAX_FUNC lines"
fi
exit "$bad"
