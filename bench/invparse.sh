#!/usr/bin/env bash
# bench/invparse.sh: what invoice recognition adds to a backup, and what
# signature verification costs, measured in one run on one machine.
#
# 1. einvault backup of a generated corpus into a fresh repository (the
#    baseline), median of BENCH_RUNS runs;
# 2. invoice.Recognize over every file of the same corpus (Go benchmark,
#    data already in memory: the extra CPU a backup pays), median of runs;
# 3. ratio recognise / backup: the issue allows at most 15 %;
# 4. VerifySignatures throughput (generated seller + tax-authority signed
#    invoices, and re-indented ones that need the second pass).
#
# Knobs (environment):
#   BENCH_FILES   invoices in the corpus (default 20000; BENCH_QUICK=1: 1000)
#   BENCH_RUNS    runs per measurement, median reported (default 3; quick: 1)
#   BENCH_WORK    scratch directory (default: new under /tmp, removed at the end)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
	FILES=${BENCH_FILES:-1000}
	RUNS=${BENCH_RUNS:-1}
else
	FILES=${BENCH_FILES:-20000}
	RUNS=${BENCH_RUNS:-3}
fi
die() { echo "bench: $*" >&2; exit 1; }
[[ $FILES =~ ^[0-9]+$ && $FILES -gt 0 ]] || die "BENCH_FILES must be a positive integer"
[[ $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "BENCH_RUNS must be a positive integer"
WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-invparse.XXXXXX)}
mkdir -p "$WORK"
[[ -n ${BENCH_WORK:-} ]] || trap 'rm -rf "$WORK"' EXIT

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

cd "$ROOT"
go build -o "$WORK/einvault" ./cmd/einvault
go test -c -o "$WORK/invoice.test" ./internal/invoice
"$WORK/einvault" corpus generate "$WORK/src" --files "$FILES" --seed 1 >/dev/null
BYTES=$(du -sb "$WORK/src" | cut -f1)
NFILES=$(find "$WORK/src" -type f | wc -l)
echo "corpus: $FILES invoices, $NFILES files, $BYTES bytes"

export EINVAULT_PASSWORD=invparse-bench EINVAULT_INSECURE_TEST_KDF=1 XDG_CACHE_HOME=$WORK/cache
# wall and CPU (user+sys) seconds of the backup: on a shared machine the
# CPU ratio is the steadier number.
backup=() backupcpu=()
for ((r = 1; r <= RUNS; r++)); do
	rm -rf "$WORK/repo" "$WORK/cache"
	"$WORK/einvault" init --repo "$WORK/repo" >/dev/null
	/usr/bin/time -f '%e %U %S' -o "$WORK/time" "$WORK/einvault" backup --no-catalog --repo "$WORK/repo" "$WORK/src" >/dev/null 2>&1 ||
		/usr/bin/time -f '%e %U %S' -o "$WORK/time" "$WORK/einvault" backup --repo "$WORK/repo" "$WORK/src" >/dev/null
	read -r wall user sys <"$WORK/time"
	backup+=("$wall")
	backupcpu+=("$(echo "$user + $sys" | bc -l)")
done
B=$(printf '%s\n' "${backup[@]}" | median)
BC=$(printf '%s\n' "${backupcpu[@]}" | median)

# The benchmark reports wall time per pass (ns/op) and the process CPU
# time per pass (cpu-ns/op, garbage collection included).
recog=() recogcpu=()
for ((r = 1; r <= RUNS; r++)); do
	out=$(cd internal/invoice && EINVAULT_BENCH_CORPUS=$WORK/src \
		"$WORK/invoice.test" -test.run '^$' -test.bench '^BenchmarkRecognizeCorpus$' -test.benchtime 4x)
	ns=$(awk '/^BenchmarkRecognizeCorpus/ {print $3}' <<<"$out")
	cpu=$(awk '/^BenchmarkRecognizeCorpus/ {for (i = 1; i < NF; i++) if ($(i+1) == "cpu-ns/op") print $i}' <<<"$out")
	recog+=("$(echo "$ns / 1000000000" | bc -l)")
	recogcpu+=("$(echo "$cpu / 1000000000" | bc -l)")
done
R=$(printf '%s\n' "${recog[@]}" | median)
RC=$(printf '%s\n' "${recogcpu[@]}" | median)

ver=$(cd internal/invoice && "$WORK/invoice.test" -test.run '^$' -test.bench 'Verify|RecognizeInvoice' -test.benchtime 1s)
echo "$ver" | grep '^Benchmark'
printf 'wall: backup (median of %d) %.2f s, recognise all files %.3f s (one thread): overhead %.1f %% (limit 15 %%)\n' \
	"$RUNS" "$B" "$R" "$(echo "100 * $R / $B" | bc -l)"
printf 'cpu:  backup %.2f s, recognise all files %.3f s: overhead %.1f %% (limit 15 %%)\n' \
	"$BC" "$RC" "$(echo "100 * $RC / $BC" | bc -l)"
printf 'recognise throughput: %.1f MB/s over the whole corpus\n' "$(echo "$BYTES / $R / 1000000" | bc -l)"
echo "note: recognition is measured single-threaded on data in memory; numbers on a shared machine are noisy"
