#!/usr/bin/env bash
# fio-limit.sh DIR [RUNTIME_S] [SIZE_MIB]
#
# The device limit that dwal's benchmark compares itself with: fio with the
# io_uring engine (psync when io_uring cannot run; the output says which),
# direct=1, queue depth 1, on a file in DIR that is laid out (written once)
# first, so that writes land in initialised blocks as a pre-zeroed log does:
#   - 4 KiB writes, fdatasync after each: IOPS, write and sync latency
#     percentiles (p50/p99 of one durable write = write + sync, summed);
#   - 1 MiB writes, fdatasync after each: MB/s;
#   - sequential 1 MiB reads: MB/s, at queue depth 1 and at 16 (a reader
#     with readahead keeps several requests in flight; QD16 is the device's
#     read limit, QD1 what one synchronous reader gets).
# Prints one JSON object on stdout (MB = 10^6 bytes, latencies in µs).
# Installs fio and jq with apt-get when missing and run as root.
# Environment: FIO_RUNTIME (s, default 5), FIO_SIZE_MIB (default 256).
set -euo pipefail

dir=${1:?usage: fio-limit.sh DIR [RUNTIME_S] [SIZE_MIB]}
runtime=${2:-${FIO_RUNTIME:-5}}
size=${3:-${FIO_SIZE_MIB:-256}}

need=()
command -v fio >/dev/null || need+=(fio)
command -v jq >/dev/null || need+=(jq)
if ((${#need[@]})); then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "fio-limit: installing ${need[*]}" >&2
		if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2; then
			apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
		fi
	else
		echo "fio-limit: needs ${need[*]} (apt-get install -y ${need[*]})" >&2
		exit 1
	fi
fi

mkdir -p "$dir"
work=$(mktemp -d "$dir/fio-limit.XXXXXX")
trap 'rm -rf "$work"' EXIT
file=$work/data

engine=io_uring
note=""
if ! fio --name=probe --ioengine=io_uring --direct=1 --filename="$work/probe" --size=1M \
	--rw=write --bs=4k --output-format=json >/dev/null 2>"$work/probe.err"; then
	engine=psync
	note="io_uring engine failed: $(head -c 300 "$work/probe.err" | tr '\n"' ' _')"
fi
rm -f "$work/probe"

common=(--ioengine="$engine" --direct=1 --filename="$file" --size="${size}M" --iodepth=1
	--output-format=json --group_reporting)

# Lay the file out: every block written once, then synced.
fio --name=layout "${common[@]}" --rw=write --bs=1m --end_fsync=1 >/dev/null

run() { fio --name="$1" "${common[@]}" --time_based --runtime="$runtime" "${@:2}"; }
w4k=$(run w4k --rw=write --bs=4k --fdatasync=1)
w1m=$(run w1m --rw=write --bs=1m --fdatasync=1)
r1m=$(run r1m --rw=read --bs=1m)
r1mq=$(run r1mq --rw=read --bs=1m --iodepth=16)

jq -n \
	--arg version "$(fio --version)" --arg engine "$engine" --arg note "$note" --arg dir "$dir" \
	--argjson size "$size" --argjson runtime "$runtime" \
	--argjson w4k "$w4k" --argjson w1m "$w1m" --argjson r1m "$r1m" --argjson r1mq "$r1mq" '
	def us(x): (x // 0) / 1000;
	def pct(l; p): us(l.percentile[p]);
	($w4k.jobs[0]) as $a | ($w1m.jobs[0]) as $b | ($r1m.jobs[0]) as $c | ($r1mq.jobs[0]) as $d |
	{
	  fio_version: $version, engine: $engine, engine_note: $note, dir: $dir,
	  size_mib: $size, runtime_s: $runtime,
	  write_4k_fdatasync_qd1: {
	    iops: $a.write.iops,
	    mean_us: (if $a.write.iops > 0 then 1e6 / $a.write.iops else 0 end),
	    write_p50_us: pct($a.write.clat_ns; "50.000000"),
	    write_p99_us: pct($a.write.clat_ns; "99.000000"),
	    sync_p50_us: pct($a.sync.lat_ns; "50.000000"),
	    sync_p99_us: pct($a.sync.lat_ns; "99.000000"),
	    p50_us: (pct($a.write.clat_ns; "50.000000") + pct($a.sync.lat_ns; "50.000000")),
	    p99_us: (pct($a.write.clat_ns; "99.000000") + pct($a.sync.lat_ns; "99.000000"))
	  },
	  write_1m_fdatasync_qd1: { mb_s: ($b.write.bw_bytes / 1e6), iops: $b.write.iops },
	  read_1m_seq_qd1: { mb_s: ($c.read.bw_bytes / 1e6), iops: $c.read.iops },
	  read_1m_seq_qd16: { mb_s: ($d.read.bw_bytes / 1e6), iops: $d.read.iops }
	}'
