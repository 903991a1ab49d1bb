#!/usr/bin/env bash
# bench/invoices_scale.sh: the invoice catalog on 1,000,000 invoices (issue 6
# scale run; not in CI, takes long).
#
# On the cached scale corpus ($HOME/.cache/einvault/scale-corpus-N, generated
# once without renderings or dump when missing) it measures, with wall time
# and peak RSS from /usr/bin/time:
#   - the initial backup with --no-catalog and with the catalog (each into a
#     new repository; the --no-catalog one is deleted after its run), and
#     their ratio (issue 6: at most 1.15; the --no-catalog backup runs last
#     and SCALE_NOCAT=0 skips it);
#   - 'invoices restore KEY' with a cold cache (the first query fills the
#     SQLite cache from the catalog: that time is reported on its own row),
#     then warm (median of 5; target < 1 s);
#   - 'invoices find --number' and 'invoices gaps --seller' (warm, median of 3).
# It prints a markdown table and writes it to
# bench/results/<date>-invoices-scale-N.md (BENCH_RESULTS to change).
#
# Knobs: SCALE_FILES (default 1000000), BENCH_WORK (default a new directory
# under /tmp; needs about 1.5x the corpus size), BENCH_KEEP=1 keeps it,
# BENCH_NICE (default 10).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILES=${SCALE_FILES:-1000000}
CORPUS=$HOME/.cache/einvault/scale-corpus-$FILES
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
NICE=${BENCH_NICE:-10}
log() { echo "bench/invoices_scale: $*" >&2; }
die() { log "$*"; exit 1; }
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-invscale.XXXXXX)}
mkdir -p "$WORK"
[[ ${BENCH_KEEP:-0} == 1 ]] || trap 'rm -rf "$WORK"' EXIT
EV=$WORK/einvault
(cd "$ROOT" && go build -o "$EV" ./cmd/einvault) || die "build failed"
if [[ ! -f $CORPUS/corpus.json ]]; then
	log "generating $FILES invoices into $CORPUS (once)"
	rm -rf "$CORPUS"
	"$EV" corpus generate "$CORPUS" --files "$FILES" --pdf-ratio 0 --dump-size 0 >&2
fi
export EINVAULT_PASSWORD=einvault-bench-password EINVAULT_CACHE_DIR=$WORK/cache
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# run LABEL COMMAND...: wall seconds and peak RSS (MiB) of one command.
ROWS=()
run() {
	local label=$1
	shift
	nice -n "$NICE" /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" ||
		{ cat "$WORK/err" >&2; die "$label failed"; }
	read -r SECS KIB <"$WORK/time"
	RSS=$((KIB / 1024))
	log "$label: ${SECS}s, ${RSS} MiB"
}
row() {
	ROWS+=("| $1 | $2 | $3 |")
	log "row: ${ROWS[-1]}"
}

export EINVAULT_REPO=$WORK/repo-cat
"$EV" init -q
sync
run "backup with catalog" "$EV" backup -q --no-progress "$CORPUS"
CAT=$SECS
row "initial backup with catalog" "$SECS s" "$RSS MiB"
ls -l "$EINVAULT_REPO"/catalogs/ >&2

# one invoice's key, read from a corpus file (MST/KHMSHDon/KHHDon/SHDon)
F=$(find "$CORPUS/invoices" -name '*.xml' | sort | sed -n 1000p)
field() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" "$F" | head -1; }
KEY="$(field MST)/$(field KHMSHDon)/$(field KHHDon)/$(field SHDon)"
SELLER=$(field MST)
NUMBER=$(field SHDon)
log "key $KEY ($F)"

rm -rf "$WORK/one"
run "restore cold" "$EV" invoices restore "$KEY" --target "$WORK/one" -q
row "invoices restore KEY, cold cache (fills the cache from the catalog)" "$SECS s" "$RSS MiB"
cmp "$F" "$WORK/one/${F#"$CORPUS"/}" || die "restored invoice differs from $F"

warm() { # label n command...: median of n runs
	local label=$1 n=$2 t=() rss=0
	shift 2
	for ((i = 0; i < n; i++)); do
		rm -rf "$WORK/one"
		run "$label" "$@"
		t+=("$SECS")
		((RSS > rss)) && rss=$RSS
	done
	row "$label" "$(printf '%s\n' "${t[@]}" | median) s" "$rss MiB"
}
warm "invoices restore KEY, warm (median of 5; target < 1 s)" 5 "$EV" invoices restore "$KEY" --target "$WORK/one" -q
warm "invoices find --number $NUMBER (median of 3)" 3 "$EV" invoices find --number "$NUMBER" -q
warm "invoices gaps --seller $SELLER (median of 3)" 3 "$EV" invoices gaps --seller "$SELLER" -q
warm "invoices gaps, all sellers (median of 3)" 3 "$EV" invoices gaps -q

# the comparison backup last: the look-ups above are the slow part to wait for
if [[ ${SCALE_NOCAT:-1} == 1 ]]; then
	export EINVAULT_REPO=$WORK/repo-nocat
	"$EV" init -q
	sync
	run "backup --no-catalog" "$EV" backup -q --no-progress --no-catalog "$CORPUS"
	row "initial backup --no-catalog" "$SECS s" "$RSS MiB"
	row "ratio with/without catalog" "$(echo "scale=3; $CAT / $SECS" | bc) (target <= 1.15)" ""
	rm -rf "$EINVAULT_REPO"
fi

OUT=$RESULTS/$(date -u +%Y-%m-%d)-invoices-scale-$FILES.md
mkdir -p "$RESULTS"
{
	echo "# Invoice catalog at scale: $FILES invoices"
	echo
	echo "einvault $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) cores, load at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Commands run under nice -n $NICE; wall time and peak RSS from /usr/bin/time."
	echo
	echo "| operation | wall | peak RSS |"
	echo "|---|---:|---:|"
	printf '%s\n' "${ROWS[@]}"
} | tee "$OUT"
log "written to $OUT"
