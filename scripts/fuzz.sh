#!/usr/bin/env bash
# Run each fuzz target of ./engine for a while.
#
#   scripts/fuzz.sh [duration]      duration per target, as go test -fuzztime
#                                   takes it (default 10s; "2m", "100000x")
#
# Environment: GO (default go), FUZZ_TARGETS (default: every Fuzz* of
# ./engine), FUZZ_PARALLEL (workers, default GOMAXPROCS).
#
# A failure leaves the input under engine/testdata/fuzz/<Target>/ (commit it
# with the fix: it then runs in every `go test`), and the script exits 1.
set -euo pipefail

dur="${1:-10s}"
GO="${GO:-go}"
cd "$(dirname "$0")/.."

targets="${FUZZ_TARGETS:-$(grep -ho '^func Fuzz[A-Za-z0-9_]*' engine/*_test.go | sed 's/^func //' | sort -u)}"
par=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then
	par=(-parallel "$FUZZ_PARALLEL")
fi

status=0
summary=""
run() { "$GO" test -run '^$' -fuzz "^${1}\$" -fuzztime "$dur" "${par[@]}" ./engine 2>&1 | tee "$log"; }

for t in $targets; do
	echo "== $t for $dur"
	log="$(mktemp)"
	if run "$t"; then
		res=ok
	elif grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
		# NB: go test -fuzz sometimes reports the end of -fuzztime itself as a
		# failure ("context deadline exceeded", no failing input written): a
		# toolchain hiccup, not a finding. A real finding always writes its
		# input. Run the target once more.
		echo "== $t: the fuzz deadline was reported as a failure without an input; once more"
		if run "$t"; then
			res=ok
		else
			res=FAIL
			status=1
		fi
	else
		res=FAIL
		status=1
	fi
	# The last progress line carries the total execs.
	execs="$(grep -o 'execs: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)"
	summary+="$(printf '%-22s %-4s %s execs' "$t" "$res" "${execs:-?}")"$'\n'
	rm -f "$log"
done
echo "== fuzz summary ($dur per target)"
printf '%s' "$summary"
exit $status
