#!/usr/bin/env bash
# bench/remote.sh: backup of the invoice corpus to MinIO (S3) and to SFTP
# (a private OpenSSH sshd), both on loopback, einvault against Debian's
# restic to the same servers in the same run. Prints the median wall time of
# BENCH_RUNS initial backups per tool and target and the ratio
# einvault / restic, and writes the table to bench/results/. Target
# (issue 4): at most 0.5.
#
# Knobs (environment):
#   BENCH_FILES    invoices in the corpus (default 100000, about 1.1 GB, the
#                  corpus bench/run.sh uses; 2000 with BENCH_QUICK=1)
#   BENCH_RUNS     runs per tool and target, median reported (default 3; 1 quick)
#   BENCH_TARGETS  comma list of: s3, sftp (default both)
#   BENCH_WORK     scratch directory; BENCH_KEEP=1 keeps it (logs inside)
#   BENCH_RESULTS  where the markdown table goes (default bench/results)
#   EINVAULT_MINIO MinIO server binary (default $HOME/.cache/einvault/bin/minio,
#                  then PATH)
# MinIO, sshd and the clients share the machine's cores: on a busy machine
# the numbers are noisy.
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
TARGETS=${BENCH_TARGETS:-s3,sftp}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
log() { echo "bench/remote: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/sshd.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/sshd.sh"
[[ $FILES =~ ^[0-9]+$ && $FILES -gt 0 ]] || die "BENCH_FILES must be a positive integer, got '$FILES'"
[[ $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
for t in ${TARGETS//,/ }; do [[ $t == s3 || $t == sftp ]] || die "unknown target '$t' in BENCH_TARGETS (s3, sftp)"; done
command -v restic >/dev/null || die "restic not found (apt install restic)"
command -v bc >/dev/null || die "bc not found (apt install bc)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt install time)"
MINIO=${EINVAULT_MINIO:-$HOME/.cache/einvault/bin/minio}
[[ -x $MINIO ]] || MINIO=$(command -v minio || true)
[[ ",$TARGETS," != *",s3,"* || -x $MINIO ]] || die "MinIO not found: set EINVAULT_MINIO"
SSHD=${SSHD:-/usr/sbin/sshd}
[[ ",$TARGETS," != *",sftp,"* || -x $SSHD ]] || die "sshd not found at $SSHD (apt install openssh-server)"

WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-bench-remote.XXXXXX)}
mkdir -p "$WORK"
SSHD_PID= MINIO_PID=
cleanup() {
	[[ -n $SSHD_PID ]] && kill "$SSHD_PID" 2>/dev/null || true
	[[ -n $MINIO_PID ]] && kill "$MINIO_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
EV=$WORK/einvault
(cd "$ROOT" && go build -o "$EV" ./cmd/einvault) || die "build failed"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 300); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# --- the corpus: the same cache as bench/run.sh ------------------------------
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/einvault
GEN_HASH=$(cd "$ROOT/internal/corpus" && find . -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
SRC=$CACHE_ROOT/bench-corpus-$FILES-$GEN_HASH
if [[ ! -f $SRC/corpus.json ]]; then
	log "generating a corpus of $FILES invoices into $SRC"
	mkdir -p "$CACHE_ROOT"
	rm -rf "$SRC.tmp"
	"$EV" corpus generate "$SRC.tmp" --files "$FILES" --seed 1 >/dev/null
	mv "$SRC.tmp" "$SRC"
fi
SIZE=$(du -sh "$SRC" | cut -f1)
log "corpus: $FILES invoices, $SIZE ($SRC)"

export EINVAULT_PASSWORD=einvault-bench-password RESTIC_PASSWORD=einvault-bench-password
export XDG_CACHE_HOME=$WORK/cache # fresh caches for both tools

# --- MinIO ---------------------------------------------------------------------
if [[ ",$TARGETS," == *",s3,"* ]]; then
	S3_PORT=$(free_port)
	export AWS_ACCESS_KEY_ID=bench$RANDOM AWS_SECRET_ACCESS_KEY=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
	mkdir -p "$WORK/minio"
	MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
		"$MINIO" server --quiet --address "127.0.0.1:$S3_PORT" --console-address 127.0.0.1:0 "$WORK/minio" >"$WORK/minio.log" 2>&1 &
	MINIO_PID=$!
	wait_port "$S3_PORT" || die "MinIO did not start (see $WORK/minio.log)"
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$S3_PORT/minio/health/ready" >/dev/null 2>&1 && break
		sleep 0.2
	done
	log "MinIO $("$MINIO" --version 2>/dev/null | head -1 | cut -d' ' -f3) on 127.0.0.1:$S3_PORT"
fi

# --- sshd ----------------------------------------------------------------------
if [[ ",$TARGETS," == *",sftp,"* ]]; then
	start_sshd "$SSHD" "$WORK/ssh" "$WORK/sshd.log" || die "sshd did not start (see $WORK/sshd.log)"
	USER_NAME=$(id -un)
	# restic runs ssh itself: give it the key and the pinned host key.
	SSH_CMD="ssh -p $SSH_PORT -i $WORK/ssh/client_key -o UserKnownHostsFile=$WORK/ssh/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes $USER_NAME@127.0.0.1 -s sftp"
fi

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# one TOOL TARGET RUN: seconds of one initial backup into a fresh
# repository; the client's CPU seconds (user+sys, with its children such as
# restic's ssh) go to $WORK/cpu-TOOL-TARGET: unlike wall time they hardly
# depend on what else the machine runs.
one() {
	local tool=$1 target=$2 run=$3 logf=$WORK/$1-$2.log
	local dir=$WORK/repo-$tool-$target-$run bucket=bench-$tool-$run
	local init=() backup=()
	case $tool/$target in
	einvault/s3)
		init=("$EV" -r "s3:http://127.0.0.1:$S3_PORT/$bucket" init -q)
		backup=("$EV" -r "s3:http://127.0.0.1:$S3_PORT/$bucket" backup -q --no-progress "$SRC") ;;
	restic/s3)
		init=(restic -q -r "s3:http://127.0.0.1:$S3_PORT/$bucket" init)
		backup=(restic -q -r "s3:http://127.0.0.1:$S3_PORT/$bucket" backup "$SRC") ;;
	einvault/sftp)
		init=("$EV" -r "sftp:$USER_NAME@127.0.0.1:$SSH_PORT:$dir" init -q)
		backup=("$EV" -r "sftp:$USER_NAME@127.0.0.1:$SSH_PORT:$dir" backup -q --no-progress "$SRC") ;;
	restic/sftp)
		init=(restic -q -r "sftp:$USER_NAME@127.0.0.1:$dir" -o "sftp.command=$SSH_CMD" init)
		backup=(restic -q -r "sftp:$USER_NAME@127.0.0.1:$dir" -o "sftp.command=$SSH_CMD" backup "$SRC") ;;
	esac
	"${init[@]}" >>"$logf" 2>&1 || die "$tool init on $target failed (see $logf)"
	local t0 t1
	t0=$(now)
	/usr/bin/time -f '%U %S' -o "$WORK/cpu.tmp" "${backup[@]}" >>"$logf" 2>&1 || die "$tool backup to $target failed (see $logf)"
	t1=$(now)
	awk '{print $1 + $2}' "$WORK/cpu.tmp" >>"$WORK/cpu-$tool-$target"
	rm -rf "$dir" "$XDG_CACHE_HOME"
	[[ $target == s3 ]] && rm -rf "$WORK/minio/$bucket"
	echo "$t1 - $t0" | bc
}

declare -A MED CPU
for target in ${TARGETS//,/ }; do
	for r in $(seq "$RUNS"); do
		# Alternate the order so that neither tool always runs on a
		# warmer (or more loaded) machine.
		order=(einvault restic)
		((r % 2 == 0)) && order=(restic einvault)
		for tool in "${order[@]}"; do
			s=$(one "$tool" "$target" "$r")
			echo "$s" >>"$WORK/times-$tool-$target"
			log "$tool -> $target run $r: ${s}s"
		done
	done
	for tool in einvault restic; do
		MED[$tool/$target]=$(median <"$WORK/times-$tool-$target")
		CPU[$tool/$target]=$(median <"$WORK/cpu-$tool-$target")
	done
done

mkdir -p "$RESULTS"
OUT=$RESULTS/$(date -u +%Y-%m-%d)-remote-$FILES.md
{
	echo "## Initial backup to MinIO (S3) and SFTP on loopback, $FILES invoices ($SIZE), median of $RUNS"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
	echo "MinIO / sshd and the clients share the cores; numbers on a shared machine are noisy."
	echo
	echo "| target | einvault (s) | restic $(restic version | cut -d' ' -f2) (s) | einvault / restic | target | einvault CPU (s) | restic CPU (s) | CPU ratio |"
	echo "|---|---|---|---|---|---|---|---|"
	for target in ${TARGETS//,/ }; do
		e=${MED[einvault/$target]} r=${MED[restic/$target]}
		ec=${CPU[einvault/$target]} rc=${CPU[restic/$target]}
		printf '| %s | %.2f | %.2f | %.2f | ≤ 0.50 | %.1f | %.1f | %.2f |\n' "$target" "$e" "$r" "$(echo "scale=4; $e / $r" | bc)" \
			"$ec" "$rc" "$(echo "scale=4; $ec / $rc" | bc)"
	done
	echo
	echo "CPU: user+sys seconds of the client (restic's ssh included), median; the servers' CPU is not counted."
} | tee "$OUT"
log "results in $OUT"
