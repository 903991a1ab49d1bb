#!/usr/bin/env bash
# bench/sftp.sh: backup of the invoice corpus to SFTP on loopback (a private
# OpenSSH sshd) and to an rclone remote (a local directory behind rclone),
# einvault against Debian's restic to the same servers in the same run.
# Prints the median wall time of BENCH_RUNS runs per tool and target and the
# ratio einvault / restic. Target (issue 4): at most 0.5.
#
# Knobs: BENCH_FILES (default 100000, about 1.1 GB; 2000 with BENCH_QUICK=1),
# BENCH_RUNS (default 3; 1 quick), BENCH_TARGETS (default sftp,rclone),
# BENCH_WORK, BENCH_KEEP=1. sshd and clients share the machine's cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
	FILES=${BENCH_FILES:-2000}
	RUNS=${BENCH_RUNS:-1}
else
	FILES=${BENCH_FILES:-100000}
	RUNS=${BENCH_RUNS:-3}
fi
TARGETS=${BENCH_TARGETS:-sftp,rclone}
log() { echo "bench/sftp: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/sshd.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/sshd.sh"
[[ $FILES =~ ^[0-9]+$ && $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "BENCH_FILES and BENCH_RUNS must be positive integers"
SSHD=${SSHD:-/usr/sbin/sshd}
[[ -x $SSHD ]] || die "sshd not found at $SSHD (apt install openssh-server)"
command -v restic >/dev/null || die "restic not found (apt install restic)"
command -v rclone >/dev/null || die "rclone not found (apt install rclone)"

WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-bench-sftp.XXXXXX)}
mkdir -p "$WORK"
SSHD_PID=
cleanup() {
	[[ -n $SSHD_PID ]] && kill "$SSHD_PID" 2>/dev/null || true
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
EV=$WORK/einvault
(cd "$ROOT" && go build -o "$EV" ./cmd/einvault) || die "build failed"

# A private sshd on a free loopback port, keys generated for this run.
start_sshd "$SSHD" "$WORK/ssh" "$WORK/sshd.log" || die "sshd did not start (see $WORK/sshd.log)"
PORT=$SSH_PORT
USER_NAME=$(id -un)
SSH_CMD="ssh -p $PORT -i $WORK/ssh/client_key -o UserKnownHostsFile=$WORK/ssh/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes $USER_NAME@127.0.0.1 -s sftp"
export EINVAULT_PASSWORD=einvault-bench-password RESTIC_PASSWORD=einvault-bench-password
export EINVAULT_INSECURE_TEST_KDF=${EINVAULT_INSECURE_TEST_KDF:-0}
export RCLONE_CONFIG=/dev/null

SRC=$WORK/corpus
log "generating a corpus of $FILES invoices"
"$EV" corpus generate "$SRC" --files "$FILES" --seed 1 >/dev/null
log "corpus: $(du -sh "$SRC" | cut -f1)"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# one TOOL TARGET: seconds of one initial backup into a fresh repository.
one() {
	local tool=$1 target=$2 dir=$WORK/repo-$1-$2
	rm -rf "$dir"
	local t0 t1
	case $tool/$target in
	einvault/sftp)
		export EINVAULT_REPO="sftp:$USER_NAME@127.0.0.1:$PORT:$dir"
		"$EV" init -q >>"$WORK/$tool-$target.log" 2>&1 || die "einvault init failed (see $WORK/$tool-$target.log)"
		t0=$(now); "$EV" backup -q --no-progress "$SRC" >>"$WORK/$tool-$target.log" 2>&1 || die "einvault backup failed"; t1=$(now) ;;
	einvault/rclone)
		export EINVAULT_REPO="rclone::local:$dir"
		"$EV" init -q >>"$WORK/$tool-$target.log" 2>&1 || die "einvault init failed (see $WORK/$tool-$target.log)"
		t0=$(now); "$EV" backup -q --no-progress "$SRC" >>"$WORK/$tool-$target.log" 2>&1 || die "einvault backup failed"; t1=$(now) ;;
	restic/sftp)
		local r=(restic -q -r "sftp:$USER_NAME@127.0.0.1:$dir" -o "sftp.command=$SSH_CMD")
		"${r[@]}" init >>"$WORK/$tool-$target.log" 2>&1 || die "restic init failed (see $WORK/$tool-$target.log)"
		t0=$(now); "${r[@]}" backup "$SRC" >>"$WORK/$tool-$target.log" 2>&1 || die "restic backup failed"; t1=$(now) ;;
	restic/rclone)
		local r=(restic -q -r "rclone::local:$dir")
		"${r[@]}" init >>"$WORK/$tool-$target.log" 2>&1 || die "restic init failed (see $WORK/$tool-$target.log)"
		t0=$(now); "${r[@]}" backup "$SRC" >>"$WORK/$tool-$target.log" 2>&1 || die "restic backup failed"; t1=$(now) ;;
	esac
	rm -rf "$dir"
	echo "$t1 - $t0" | bc
}

declare -A MED
for target in ${TARGETS//,/ }; do
	for tool in einvault restic; do
		ts=()
		for r in $(seq "$RUNS"); do
			s=$(one "$tool" "$target")
			ts+=("$s")
			log "$tool -> $target run $r: ${s}s"
		done
		MED[$tool/$target]=$(printf '%s\n' "${ts[@]}" | median)
	done
done

echo
echo "## Backup to SFTP / rclone on loopback, $FILES invoices ($(du -sh "$SRC" | cut -f1)), median of $RUNS"
echo
echo "Noisy when the machine is shared; sshd / rclone and the client share its cores."
echo
echo "| target | einvault (s) | restic $(restic version | cut -d' ' -f2) (s) | einvault / restic | target |"
echo "|---|---|---|---|---|"
for target in ${TARGETS//,/ }; do
	e=${MED[einvault/$target]} r=${MED[restic/$target]}
	printf '| %s | %.2f | %.2f | %s | ≤ 0.50 |\n' "$target" "$e" "$r" "$(echo "scale=2; $e / $r" | bc)"
done
