#!/usr/bin/env bash
# bench/scale.sh: memory bound of a very large backup. Generates a corpus of
# SCALE_FILES invoice files (default 1,000,000; cached under
# ~/.cache/einvault), backs it up twice (initial and unchanged incremental)
# and fails if einvault's peak RSS reaches SCALE_MAX_RSS_MIB (default 400).
# With SCALE_RESTIC=1 restic's peak RSS is measured on the same data.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILES=${SCALE_FILES:-1000000}
MAX=${SCALE_MAX_RSS_MIB:-400}
CACHE=${HOME}/.cache/einvault/scale-corpus-$FILES
WORK=$(mktemp -d /tmp/einvault-scale.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
go build -o "$WORK/einvault" "$ROOT/cmd/einvault"
if [[ ! -f $CACHE/corpus.json ]]; then
	rm -rf "$CACHE"
	echo "scale: generating $FILES invoices into $CACHE (once)" >&2
	"$WORK/einvault" corpus generate "$CACHE" --files "$FILES" --pdf-ratio 0 --dump-size 0 >&2
fi
export EINVAULT_REPO=$WORK/repo EINVAULT_PASSWORD=scale-bench
"$WORK/einvault" init -q
measure() { # label, command...
	local label=$1; shift
	/usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; echo "scale: $label failed" >&2; exit 1; }
	read -r secs kib <"$WORK/time"
	echo "| $label | $secs s | $((kib / 1024)) MiB |"
	echo "$kib" >"$WORK/rss-$label"
}
echo "| operation ($FILES files) | wall | peak RSS |"
echo "|---|---:|---:|"
measure "einvault backup" "$WORK/einvault" backup -q "$CACHE"
measure "einvault backup (unchanged)" "$WORK/einvault" backup -q "$CACHE"
if [[ ${SCALE_RESTIC:-0} == 1 ]]; then
	export RESTIC_REPOSITORY=$WORK/restic RESTIC_PASSWORD=scale-bench
	restic init -q
	measure "restic backup" restic backup -q "$CACHE"
fi
for f in "$WORK"/rss-einvault*; do
	kib=$(cat "$f")
	if ((kib / 1024 >= MAX)); then
		echo "scale: FAIL: peak RSS $((kib / 1024)) MiB >= $MAX MiB ($(basename "$f"))" >&2
		exit 1
	fi
done
echo "scale: peak RSS within $MAX MiB" >&2
