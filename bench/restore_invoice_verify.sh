#!/usr/bin/env bash
# Added time of restore's automatic invoice verification (content ID +
# signature re-check) on a generated invoice corpus: restore with and
# without --no-invoice-verify, median of RUNS, ratio printed.
# Usage: bench/restore_invoice_verify.sh [FILES] [RUNS]
set -euo pipefail
FILES=${1:-2000}
RUNS=${2:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$(dirname "$0")/.."
go build -o "$W/einvault" ./cmd/einvault
export EINVAULT_INSECURE_TEST_KDF=1 EINVAULT_PASSWORD=bench EINVAULT_REPO="$W/repo" EINVAULT_CACHE_DIR="$W/cache"
E="$W/einvault"
$E corpus generate "$W/corpus" --files "$FILES" --seed 1 --dump-size -1 >/dev/null
$E init >/dev/null
$E backup "$W/corpus" >/dev/null
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # $@: extra restore flags; prints seconds
	rm -rf "$W/t"
	local s e
	s=$(date +%s.%N)
	$E restore latest --target "$W/t" "$@" >/dev/null
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}
plain=$(for i in $(seq "$RUNS"); do run --no-invoice-verify; done | median)
verify=$(for i in $(seq "$RUNS"); do run; done | median)
printf 'invoices=%s restore --no-invoice-verify %.2fs, restore (verify + signature re-check) %.2fs, added %.2fs, ratio %.2f\n' \
	"$FILES" "$plain" "$verify" "$(echo "$verify - $plain" | bc)" "$(echo "$verify / $plain" | bc -l)"
