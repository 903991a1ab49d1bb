#!/usr/bin/env bash
# bench/invoices.sh: what the invoice catalog costs and how fast one
# invoice comes back.
#
# 1. Catalog overhead: the initial backup of the invoice corpus with the
#    catalog (default) and with --no-catalog, alternating, median of
#    BENCH_RUNS runs each; prints both and the ratio (target, issue 6:
#    at most 1.15). Signature checks are not part of the backup: their cost
#    is measured separately by 'invoices verify latest' (stored copies).
# 2. Look-ups: 'invoices restore KEY' of one invoice (target < 1 s) and
#    'invoices find' on the same repository, cache warm, median of 5; and
#    'invoices restore KEY' with an empty cache (found through the catalogs'
#    look-up index, the cache not filled), median of 3.
# 3. With BENCH_SCALE=1 the look-ups run on a 1,000,000-invoice repository
#    (corpus from $HOME/.cache/einvault/scale-corpus-1000000 when present,
#    generated otherwise; the backup of it is kept in BENCH_SCALE_REPO).
#
# Knobs: BENCH_FILES (default 20000; 2000 with BENCH_QUICK=1), BENCH_RUNS
# (default 3; 1 quick), BENCH_WORK, BENCH_KEEP=1, BENCH_SCALE=1,
# BENCH_SCALE_FILES (default 1000000), BENCH_SCALE_REPO.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
	FILES=${BENCH_FILES:-2000}
	RUNS=${BENCH_RUNS:-1}
else
	FILES=${BENCH_FILES:-20000}
	RUNS=${BENCH_RUNS:-3}
fi
log() { echo "bench/invoices: $*" >&2; }
die() { log "$*"; exit 1; }
[[ $FILES =~ ^[0-9]+$ && $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "BENCH_FILES and BENCH_RUNS must be positive integers"

WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-bench-invoices.XXXXXX)}
mkdir -p "$WORK"
[[ ${BENCH_KEEP:-0} == 1 ]] || trap 'rm -rf "$WORK"' EXIT
EV=$WORK/einvault
(cd "$ROOT" && go build -o "$EV" ./cmd/einvault) || die "build failed"
export EINVAULT_PASSWORD=einvault-bench-password EINVAULT_INSECURE_TEST_KDF=${EINVAULT_INSECURE_TEST_KDF:-0}
export EINVAULT_CACHE_DIR=$WORK/cache

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
secs() { echo "$2 - $1" | bc; }

CORPUS=$WORK/corpus
log "generating a corpus of $FILES invoices"
"$EV" corpus generate "$CORPUS" --files "$FILES" --seed 1 >/dev/null

# backup_once FLAGS...: seconds of one initial backup into a new repository.
backup_once() {
	export EINVAULT_REPO=$WORK/repo-run
	rm -rf "$EINVAULT_REPO"
	"$EV" init -q
	sync
	local t0 t1
	t0=$(now)
	/usr/bin/time -f '%U %S' -o "$WORK/cpu" "$EV" backup -q --no-progress "$@" "$CORPUS" >"$WORK/backup.log" 2>&1 || die "backup $* failed (see $WORK/backup.log)"
	t1=$(now)
	echo "$(secs "$t0" "$t1") $(awk '{print $1 + $2}' "$WORK/cpu")"
}
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

# CPU seconds (user + system) are reported too: on a busy machine they
# are the steadier measure of what the catalog adds.
WITH=() WITHOUT=() CWITH=() CWITHOUT=()
for ((i = 1; i <= RUNS; i++)); do
	read -r w c < <(backup_once --no-catalog)
	WITHOUT+=("$w") CWITHOUT+=("$c")
	read -r w c < <(backup_once)
	WITH+=("$w") CWITH+=("$c")
	log "run $i: with catalog ${WITH[-1]}s (${CWITH[-1]} CPU s), --no-catalog ${WITHOUT[-1]}s (${CWITHOUT[-1]} CPU s)"
done
MW=$(printf '%s\n' "${WITH[@]}" | median)
MO=$(printf '%s\n' "${WITHOUT[@]}" | median)
CW=$(printf '%s\n' "${CWITH[@]}" | median)
CO=$(printf '%s\n' "${CWITHOUT[@]}" | median)

# the last repository (with catalog) serves the look-ups
export EINVAULT_REPO=$WORK/repo-run
lookups() {
	local key restore=() find=() cold=() t0 t1
	key=$("$EV" invoices find --limit 1 --json | sed -n 's/.*"key":"\([^"]*\)".*/\1/p' | head -1)
	[[ -n $key ]] || die "no invoice found in the catalog"
	# cold: a new machine after a disaster, its catalog cache empty
	for i in 1 2 3; do
		rm -rf "$WORK/one" "$WORK/cold-cache"
		t0=$(now)
		EINVAULT_CACHE_DIR=$WORK/cold-cache "$EV" invoices restore "$key" --target "$WORK/one" -q || die "cold restore of $key failed"
		t1=$(now)
		cold+=("$(secs "$t0" "$t1")")
	done
	"$EV" invoices stats -q >/dev/null # cache warm
	for i in 1 2 3 4 5; do
		rm -rf "$WORK/one"
		t0=$(now)
		"$EV" invoices restore "$key" --target "$WORK/one" -q
		t1=$(now)
		restore+=("$(secs "$t0" "$t1")")
		t0=$(now)
		"$EV" invoices find --seller "${key%%/*}" --limit 100 -q
		t1=$(now)
		find+=("$(secs "$t0" "$t1")")
	done
	echo "$(printf '%s\n' "${restore[@]}" | median) $(printf '%s\n' "${find[@]}" | median) $(printf '%s\n' "${cold[@]}" | median) $key"
}
read -r RS FS CS KEY < <(lookups)
t0=$(now)
"$EV" invoices verify latest --json >"$WORK/verify.json" 2>/dev/null || true
t1=$(now)
VS=$(secs "$t0" "$t1")
SIG=$(sed -n 's/.*"signature_check_ns":\([0-9]*\).*/\1/p' "$WORK/verify.json")

echo "invoice catalog, $FILES invoices, median of $RUNS (machine load: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '  initial backup --no-catalog  %8.2f s\n' "$MO"
printf '  initial backup with catalog  %8.2f s\n' "$MW"
printf '  ratio with/without           %8.3f   (target <= 1.15)\n' "$(echo "$MW / $MO" | bc -l)"
printf '  CPU s --no-catalog / catalog %8.2f / %.2f, ratio %.3f\n' "$CO" "$CW" "$(echo "$CW / $CO" | bc -l)"
printf '  invoices verify latest       %8.2f s  (signature checks %.2f s, after the backup)\n' "$VS" "$(echo "${SIG:-0} / 1000000000" | bc -l)"
printf '  invoices restore one         %8.3f s  (%s; target < 1 s)\n' "$RS" "$KEY"
printf '  invoices restore, cold cache %8.3f s  (cache empty: found through the catalog index)\n' "$CS"
printf '  invoices find --seller       %8.3f s\n' "$FS"

if [[ ${BENCH_SCALE:-0} == 1 ]]; then
	SFILES=${BENCH_SCALE_FILES:-1000000}
	SC=$HOME/.cache/einvault/scale-corpus-$SFILES
	if [[ ! -f $SC/corpus.json ]]; then
		log "generating a $SFILES-invoice corpus in $SC (once; about 11 GB for 1,000,000)"
		"$EV" corpus generate "$SC" --files "$SFILES" --seed 1 --dump-size -1 >/dev/null
	fi
	export EINVAULT_REPO=${BENCH_SCALE_REPO:-$HOME/.cache/einvault/scale-repo-invoices-$SFILES}
	if [[ ! -f $EINVAULT_REPO/config ]]; then
		"$EV" init -q
		t0=$(now)
		"$EV" backup -q --no-progress "$SC" >/dev/null || die "scale backup failed"
		t1=$(now)
		log "scale backup of $SFILES invoices: $(secs "$t0" "$t1")s"
	fi
	t0=$(now)
	"$EV" invoices stats -q >/dev/null
	t1=$(now)
	log "catalog cache built/updated in $(secs "$t0" "$t1")s"
	read -r SRS SFS SCS SKEY < <(lookups)
	echo "scale: $SFILES invoices"
	printf '  invoices restore one         %8.3f s  (%s; target < 1 s)\n' "$SRS" "$SKEY"
	printf '  invoices restore, cold cache %8.3f s\n' "$SCS"
	printf '  invoices find --seller       %8.3f s\n' "$SFS"
fi
