#!/usr/bin/env bash
# bench/copies.sh: what copies cost. Backs up the invoice corpus to a
# repository without copies and to one with two copies (local paths, and
# with BENCH_REMOTE=1 the issue's setup: a MinIO copy and an SFTP copy on
# a private OpenSSH sshd, both on loopback, plus, reported separately, a
# MinIO copy and an rclone cloud copy), first the initial backup, then an
# incremental one after 'corpus mutate' changed 5% of the files. Prints the
# median wall time of BENCH_RUNS runs and the ratio with copies / without.
# Target (issue 4): the incremental backup with sync to two copies takes at
# most 1.2x the local-only one.
#
# Knobs: BENCH_FILES (default 100000, about 1.1 GB, the corpus bench/run.sh
# and bench/remote.sh use, cached under ~/.cache/einvault; 2000 with
# BENCH_QUICK=1), BENCH_RUNS (default 3; 1 quick), BENCH_WORK, BENCH_KEEP=1,
# BENCH_RESULTS (where the markdown table goes, default bench/results),
# BENCH_REMOTE=1 (also measure a primary with a MinIO and an SFTP copy,
# and one with a MinIO and an rclone copy), BENCH_RCLONE=0 (skip the rclone
# case), BENCH_PROFILE=DIR (CPU profile of each incremental backup there).
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
log() { echo "bench/copies: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/sshd.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/sshd.sh"
[[ $FILES =~ ^[0-9]+$ && $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "BENCH_FILES and BENCH_RUNS must be positive integers"

WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-bench-copies.XXXXXX)}
mkdir -p "$WORK"
EV=$WORK/einvault
(cd "$ROOT" && go build -o "$EV" ./cmd/einvault) || die "build failed"
export EINVAULT_PASSWORD=einvault-bench-password EINVAULT_INSECURE_TEST_KDF=${EINVAULT_INSECURE_TEST_KDF:-0}

# The corpus: the same cache as bench/run.sh and bench/remote.sh (each run
# backs up a fresh copy of it, which 'corpus mutate' then changes).
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/einvault
GEN_HASH=$(cd "$ROOT/internal/corpus" && find . -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
CORPUS=$CACHE_ROOT/bench-corpus-$FILES-$GEN_HASH
if [[ ! -f $CORPUS/corpus.json ]]; then
	log "generating a corpus of $FILES invoices into $CORPUS"
	mkdir -p "$CACHE_ROOT"
	rm -rf "$CORPUS.tmp"
	"$EV" corpus generate "$CORPUS.tmp" --files "$FILES" --seed 1 >/dev/null
	mv "$CORPUS.tmp" "$CORPUS"
fi
SIZE=$(du -sh "$CORPUS" | cut -f1)
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
export XDG_CACHE_HOME=$WORK/cache

# Optional remote copies (BENCH_REMOTE=1): a MinIO server on loopback
# (EINVAULT_MINIO or $HOME/.cache/einvault/bin/minio), a private OpenSSH
# sshd on loopback, and an rclone remote (a local directory behind the
# 'rclone serve sftp' that einvault starts).
S3_COPY="" SFTP_COPY="" RCLONE_COPY=""
MINIO_PID="" SSHD_PID=""
cleanup() {
	[[ -n $MINIO_PID ]] && kill "$MINIO_PID" 2>/dev/null || true
	[[ -n $SSHD_PID ]] && kill "$SSHD_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [[ ${BENCH_REMOTE:-0} == 1 ]]; then
	MINIO=${EINVAULT_MINIO:-$HOME/.cache/einvault/bin/minio}
	if [[ -x $MINIO ]]; then
		PORT=$(free_port)
		export MINIO_ROOT_USER=benchadmin MINIO_ROOT_PASSWORD=benchadmin-secret-123 MINIO_BROWSER=off MINIO_UPDATE=off
		export AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD
		mkdir -p "$WORK/minio"
		"$MINIO" server "$WORK/minio" --address "127.0.0.1:$PORT" --console-address 127.0.0.1:0 --quiet >"$WORK/minio.log" 2>&1 &
		MINIO_PID=$!
		for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/minio/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
		S3_COPY="s3:http://127.0.0.1:$PORT/bench-copies/RUN"
	else
		log "no MinIO binary at $MINIO: skipping the S3 copy"
	fi
	SSHD=${SSHD:-/usr/sbin/sshd}
	if [[ -x $SSHD ]]; then
		start_sshd "$SSHD" "$WORK/ssh" "$WORK/sshd.log" || die "sshd did not start (see $WORK/sshd.log)"
		SFTP_COPY="sftp:$(id -un)@127.0.0.1:$SSH_PORT:$WORK/sftp/RUN"
		mkdir -p "$WORK/sftp"
	else
		log "no sshd at $SSHD: skipping the SFTP copy"
	fi
	if [[ ${BENCH_RCLONE:-1} == 1 ]] && command -v rclone >/dev/null; then
		export RCLONE_CONFIG=$WORK/rclone.conf RCLONE_CONFIG_BENCH_TYPE=local
		RCLONE_COPY="rclone:bench:$WORK/cloud/RUN"
	else
		log "rclone not found or BENCH_RCLONE=0: skipping the cloud copy"
	fi
fi

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# run_case NAME COPIES...: prints "initial incremental" seconds of one run.
run_case() {
	local name=$1; shift
	local dir=$WORK/$name src=$WORK/$name-src
	rm -rf "$dir" "$src"
	cp -a "$CORPUS" "$src"
	export EINVAULT_REPO=$dir/repo
	"$EV" init -q
	local i=0
	for c in "$@"; do
		i=$((i + 1))
		"$EV" copies add "c$i" "$c" -q
	done
	"$EV" sync -q >/dev/null 2>&1 || true
	local t0 t1 t2
	t0=$(now)
	"$EV" backup -q --no-progress "$src" >"$WORK/$name.log" 2>&1 || die "$name: initial backup failed (see $WORK/$name.log)"
	t1=$(now)
	"$EV" corpus mutate "$src" --seed 7 --change 0.05 >/dev/null
	t1b=$(now)
	EINVAULT_CPUPROFILE=${BENCH_PROFILE:+$BENCH_PROFILE/$name-incremental.pprof} \
		"$EV" backup -q --no-progress "$src" >>"$WORK/$name.log" 2>&1 || die "$name: incremental backup failed"
	t2=$(now)
	echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1b" | bc)"
	rm -rf "$dir" "$src"
}

declare -A INIT INCR INITS INCRS
cases=(local-only two-local-copies)
[[ -n $S3_COPY && -n $SFTP_COPY ]] && cases+=(local-minio-sftp)
[[ -n $S3_COPY && -n $RCLONE_COPY ]] && cases+=(local-minio-rclone)
# Runs are interleaved (A B A B ...) so that drift in the machine's load
# hits every case alike.
for r in $(seq "$RUNS"); do
	for c in "${cases[@]}"; do
		case $c in
		local-only) out=$(run_case "$c") ;;
		two-local-copies) out=$(run_case "$c" "$WORK/$c/copy-b" "$WORK/$c/copy-c") ;;
		local-minio-sftp) out=$(run_case "$c" "${S3_COPY//RUN/$c-run$r}" "${SFTP_COPY//RUN/$c-run$r}") ;;
		local-minio-rclone) out=$(run_case "$c" "${S3_COPY//RUN/$c-run$r}" "${RCLONE_COPY//RUN/$c-run$r}") ;;
		esac
		INITS[$c]+="${out% *} " INCRS[$c]+="${out#* } "
		log "$c run $r: initial ${out% *}s, incremental ${out#* }s"
	done
done
for c in "${cases[@]}"; do
	INIT[$c]=$(printf '%s\n' ${INITS[$c]} | median)
	INCR[$c]=$(printf '%s\n' ${INCRS[$c]} | median)
done

mkdir -p "$RESULTS"
OUT=$RESULTS/$(date -u +%Y-%m-%d)-copies-$FILES.md
{
	echo "## Copies: backup + sync, $FILES invoices ($SIZE), median of $RUNS"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; numbers on a shared machine are noisy."
	echo "Each case: init, add the copies, initial backup (with its sync), 'corpus mutate --change 0.05', incremental backup (with its sync)."
	echo
	echo "| case | initial (s) | ratio | incremental 5% (s) | ratio | target |"
	echo "|---|---|---|---|---|---|"
	for c in "${cases[@]}"; do
		ri=$(echo "scale=2; ${INIT[$c]} / ${INIT[local-only]}" | bc)
		rn=$(echo "scale=2; ${INCR[$c]} / ${INCR[local-only]}" | bc)
		target="-"
		[[ $c == two-local-copies || $c == local-minio-sftp ]] && target="incremental ≤ 1.20"
		[[ $c == local-minio-rclone ]] && target="(extra: rclone cloud copy)"
		printf '| %s | %.2f | %s | %.2f | %s | %s |\n' "$c" "${INIT[$c]}" "$ri" "${INCR[$c]}" "$rn" "$target"
	done
} | tee "$OUT"
log "results in $OUT"
