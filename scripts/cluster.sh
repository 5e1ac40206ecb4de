#!/usr/bin/env bash
# make cluster: three raftkv nodes on this machine (examples/raftkv), each
# its own process with its own dwal directory, over TCP on 127.0.0.1.
# Writes keys, SIGKILLs the leader, shows the failover, writes more, brings
# the killed node back from its directory and reads every key from it.
#
#   scripts/cluster.sh [BIN]    BIN: the raftkv binary (default bin/raftkv)
#   CLUSTER_DIR=D   keep the nodes' directories and logs in D (default: a
#                   temporary directory, removed at the end)
#   CLUSTER_PORT=P  raft ports P+1..P+3, HTTP ports P+11..P+13 (default 17000)
#   KEYS=N          keys written before and after the kill (default 100)
set -euo pipefail
BIN=${1:-bin/raftkv}
PORT=${CLUSTER_PORT:-17000}
KEYS=${KEYS:-100}
command -v curl >/dev/null || { echo "cluster: needs curl" >&2; exit 1; }
if [ -n "${CLUSTER_DIR:-}" ]; then DIR=$CLUSTER_DIR; mkdir -p "$DIR"; else DIR=$(mktemp -d /tmp/raftkv-cluster.XXXXXX); fi
PEERS=""
for i in 1 2 3; do PEERS+="${PEERS:+,}n$i=127.0.0.1:$((PORT + i))=127.0.0.1:$((PORT + 10 + i))"; done
declare -A PID

http() { echo "127.0.0.1:$((PORT + 10 + $1))"; }
start() { # start node $1 in the background, its log in $DIR/n$1.log
	"$BIN" --id "n$1" --dir "$DIR/n$1" --raft-addr "127.0.0.1:$((PORT + $1))" --http-addr "$(http "$1")" \
		--peers "$PEERS" --heartbeat 300ms --snapshot-threshold 64 --snapshot-interval 1s --trailing-logs 32 \
		>>"$DIR/n$1.log" 2>&1 &
	PID[$1]=$!
}
cleanup() {
	for i in 1 2 3; do [ -n "${PID[$i]:-}" ] && kill "${PID[$i]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${CLUSTER_DIR:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT
field() { # field NODE NAME: a string or number field of NODE's /status
	curl -sf --max-time 2 "$(http "$1")/status" | sed -n "s/^  \"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p"
}
leader() { # the leader's node number, as the nodes other than $1 see it
	local deadline=$((SECONDS + 15)) i l
	while [ $SECONDS -lt $deadline ]; do
		for i in 1 2 3; do
			[ "$i" = "${1:-}" ] && continue
			l=$(field "$i" leader || true)
			if [ -n "$l" ] && [ "$(field "${l#n}" state || true)" = Leader ]; then echo "${l#n}"; return; fi
		done
		sleep 0.1
	done
	echo "cluster: no leader within 15s; logs in $DIR" >&2
	exit 1
}
show() {
	printf '  %-4s %-10s %-7s %-6s %-11s %-14s %s\n' node state leader term last_index applied_index dwal_log
	for i in 1 2 3; do
		if [ -z "${PID[$i]:-}" ]; then printf '  n%-3s %s\n' "$i" "(killed)"; continue; fi
		printf '  n%-3s %-10s %-7s %-6s %-11s %-14s %s\n' "$i" "$(field "$i" state)" "$(field "$i" leader)" \
			"$(field "$i" term)" "$(field "$i" last_index)" "$(field "$i" applied_index)" \
			"$(field "$i" first_log_index)..$(field "$i" last_log_index)"
	done
}
put_keys() { # put_keys NODE FROM TO: PUT key-FROM..key-TO through NODE (redirects followed)
	local i
	for i in $(seq "$2" "$3"); do
		curl -sf -L --max-time 10 -X PUT --data-binary "value-$i" "$(http "$1")/kv/key-$i" -o /dev/null \
			|| { echo "cluster: PUT key-$i through n$1 failed" >&2; exit 1; }
	done
}
read_keys() { # read_keys NODE TO: GET key-1..key-TO through NODE, each must hold its value
	local i v
	for i in $(seq 1 "$2"); do
		v=$(curl -sf -L --max-time 10 "$(http "$1")/kv/key-$i") || { echo "cluster: GET key-$i through n$1 failed" >&2; exit 1; }
		[ "$v" = "value-$i" ] || { echo "cluster: key-$i is \"$v\", want value-$i" >&2; exit 1; }
	done
}

echo "cluster: 3 nodes in $DIR (raft 127.0.0.1:$((PORT + 1))-$((PORT + 3)), HTTP 127.0.0.1:$((PORT + 11))-$((PORT + 13)))"
for i in 1 2 3; do start "$i"; done
L=$(leader)
echo "leader: n$L"
show
echo
echo "writing key-1..key-$KEYS through n$(((L % 3) + 1)) (a follower: it redirects to the leader)"
put_keys $(((L % 3) + 1)) 1 "$KEYS"
echo "  e.g. curl -L -X PUT --data-binary value-1 $(http $(((L % 3) + 1)))/kv/key-1"
echo
echo "kill -9 n$L (the leader, pid ${PID[$L]})"
kill -9 "${PID[$L]}"
wait "${PID[$L]}" 2>/dev/null || true
PID[$L]=""
t0=$(date +%s%N)
N=$(leader "$L")
echo "failover: n$N leads after $((($(date +%s%N) - t0) / 1000000)) ms"
show
echo
echo "writing key-$((KEYS + 1))..key-$((2 * KEYS)) through n$N; reading key-1..key-$((2 * KEYS)) back"
put_keys "$N" $((KEYS + 1)) $((2 * KEYS))
read_keys "$N" $((2 * KEYS))
echo "  all $((2 * KEYS)) keys read back from the new leader"
echo
echo "restarting n$L from $DIR/n$L"
start "$L"
deadline=$((SECONDS + 15))
until [ "$(field "$L" applied_index || echo 0)" -ge "$(field "$N" applied_index)" ] 2>/dev/null; do
	[ $SECONDS -lt $deadline ] || { echo "cluster: n$L did not catch up; logs in $DIR" >&2; exit 1; }
	sleep 0.1
done
show
read_keys "$L" $((2 * KEYS))
echo "  all $((2 * KEYS)) keys read back through n$L (it redirects to n$N)"
echo "cluster: OK"
