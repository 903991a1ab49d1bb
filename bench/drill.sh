#!/usr/bin/env bash
# Recovery drill cost: 'einvault drill' (restore into a scratch directory,
# read every file back, invoice check, RTO/RPO measured) against the peer's
# equivalent, 'restic restore --verify' of the same corpus into a fresh
# directory. Median of RUNS, ratio einvault/restic printed, plus the RTO
# the drill itself reported.
# Usage: bench/drill.sh [FILES] [RUNS]
set -euo pipefail
FILES=${1:-2000}
RUNS=${2:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$(dirname "$0")/.."
go build -o "$W/einvault" ./cmd/einvault
command -v restic >/dev/null || { echo "restic not installed (apt-get install restic)" >&2; exit 1; }
export EINVAULT_INSECURE_TEST_KDF=1 EINVAULT_PASSWORD=bench EINVAULT_REPO="$W/repo" EINVAULT_CACHE_DIR="$W/cache" EINVAULT_STATE_DIR="$W/state"
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$W/restic" RESTIC_CACHE_DIR="$W/rcache"
E="$W/einvault"
$E corpus generate "$W/corpus" --files "$FILES" --seed 1 >/dev/null
$E init >/dev/null
restic init -q
cat >"$W/einvault.yaml" <<YAML
repository: {location: $W/repo}
sources: {files: {paths: [$W/corpus]}}
jobs:
  bench: {class: invoices, sources: [files]}
YAML
export EINVAULT_CONFIG="$W/einvault.yaml"
$E run bench >/dev/null
restic backup -q "$W/corpus"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
rto=$(for i in $(seq "$RUNS"); do $E drill bench --json 2>/dev/null | sed -n 's/.*"rto_seconds":\([0-9.e-]*\).*/\1/p'; done | median)
ev=$(for i in $(seq "$RUNS"); do secs $E drill bench; done | median)
rs=$(for i in $(seq "$RUNS"); do rm -rf "$W/rt"; secs restic restore -q latest --verify --target "$W/rt"; done | median)
printf 'files=%s einvault drill %.2fs (reported RTO %.2fs), restic restore --verify %.2fs, ratio einvault/restic %.2f\n' \
	"$FILES" "$ev" "$rto" "$rs" "$(echo "$ev / $rs" | bc -l)"
