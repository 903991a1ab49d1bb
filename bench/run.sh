#!/usr/bin/env bash
# bench/run.sh: compare einvault with restic and borg on the same data, same
# machine, same run. See bench/README.md.
#
# Knobs (environment):
#   BENCH_FILES     invoices in the generated corpus (default 100000, about 1.1 GB)
#   BENCH_RUNS      runs per tool and dataset; the median is reported (default 3)
#   BENCH_DATASETS  comma list of: corpus, gosrc (default corpus,gosrc)
#   BENCH_TOOLS     comma list of: einvault, restic, borg (default all three)
#   BENCH_QUICK=1   CI mode: BENCH_FILES=2000, BENCH_RUNS=1 unless set explicitly
#   BENCH_WORK      scratch directory (default: a new one under /tmp, removed at the end)
#   BENCH_KEEP=1    keep the scratch directory (logs of every command are in it)
#   BENCH_RESULTS   where the markdown tables go (default bench/results)
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
DATASETS=${BENCH_DATASETS:-corpus,gosrc}
TOOLS=${BENCH_TOOLS:-einvault,restic,borg}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
PASSWORD=einvault-bench-password
ALL_TOOLS=(einvault restic borg)

die() { echo "bench: $*" >&2; exit 1; }
has() { [[ ",$1," == *",$2,"* ]]; }
log() { echo "bench: $*" >&2; }

[[ $FILES =~ ^[0-9]+$ && $FILES -gt 0 ]] || die "BENCH_FILES must be a positive integer, got '$FILES'"
[[ $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
for d in ${DATASETS//,/ }; do [[ $d == corpus || $d == gosrc ]] || die "unknown dataset '$d' in BENCH_DATASETS (corpus, gosrc)"; done
for t in ${TOOLS//,/ }; do [[ $t == einvault || $t == restic || $t == borg ]] || die "unknown tool '$t' in BENCH_TOOLS (einvault, restic, borg)"; done
command -v go >/dev/null || die "go is not in PATH"

# --- tools -------------------------------------------------------------------
missing=()
has "$TOOLS" restic && ! command -v restic >/dev/null && missing+=(restic)
has "$TOOLS" borg && ! command -v borg >/dev/null && missing+=(borgbackup)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
	SUDO=""
	[[ $(id -u) == 0 ]] || SUDO=sudo
	log "installing ${missing[*]} from Debian"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ -n ${BENCH_WORK:-} ]]; then
	WORK=$BENCH_WORK
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d /tmp/einvault-bench.XXXXXX)
fi
if [[ ${BENCH_KEEP:-0} != 1 ]]; then
	trap 'rm -rf "$WORK"' EXIT
fi
LOGS=$WORK/logs
RES=$WORK/results
mkdir -p "$LOGS" "$RES"

EXIT=0
EINVAULT=$WORK/einvault
einvault_built=0
log "building einvault"
if (cd "$ROOT" && go build -o "$EINVAULT" ./cmd/einvault) >"$LOGS/build.log" 2>&1; then
	einvault_built=1
else
	log "building einvault FAILED (see below); its column will be FAIL"
	tail -n 20 "$LOGS/build.log" >&2
	has "$TOOLS" einvault && EXIT=1
fi

# The corpus comes from 'einvault corpus'. While cmd/einvault does not build,
# a throw-away main that calls internal/corpus is compiled through a build
# overlay (nothing is written into the source tree).
CORPUS_TOOL=$EINVAULT
if ((!einvault_built)); then
	log "building a stand-in corpus generator from internal/corpus"
	mkdir -p "$WORK/corpusgen"
	cat >"$WORK/corpusgen/main.go" <<'EOF'
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/einvault/einvault/internal/corpus"
)

func main() {
	if len(os.Args) < 4 || os.Args[1] != "corpus" {
		fmt.Fprintln(os.Stderr, "usage: corpusgen corpus generate|mutate DIR [--files N] [--seed S]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[2], flag.ExitOnError)
	files := fs.Int("files", 100000, "")
	seed := fs.Int64("seed", 1, "")
	fs.Parse(os.Args[4:])
	var err error
	switch os.Args[2] {
	case "generate":
		var st corpus.Stats
		st, err = corpus.Generate(context.Background(), os.Args[3], corpus.Options{Files: *files, Seed: *seed})
		fmt.Printf("generated %d files, %d bytes\n", st.Files, st.Bytes)
	case "mutate":
		var st corpus.MutateStats
		st, err = corpus.Mutate(context.Background(), os.Args[3], corpus.MutateOptions{Seed: *seed})
		fmt.Printf("mutated: %d changed, %d added\n", st.Changed, st.Added)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
EOF
	printf '{"Replace":{"%s/bench/_corpusgen/main.go":"%s/corpusgen/main.go"}}' "$ROOT" "$WORK" >"$WORK/corpusgen/overlay.json"
	(cd "$ROOT" && go build -overlay "$WORK/corpusgen/overlay.json" -o "$WORK/corpusgen/corpusgen" ./bench/_corpusgen) ||
		die "cannot build internal/corpus either"
	CORPUS_TOOL=$WORK/corpusgen/corpusgen
fi

# --- datasets ----------------------------------------------------------------
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/einvault
# The corpus is deterministic for a given generator; key the cache by the
# generator's source so a changed generator never reuses a stale corpus.
GEN_HASH=$(cd "$ROOT/internal/corpus" && find . -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
CORPUS_CACHE=$CACHE_ROOT/bench-corpus-$FILES-$GEN_HASH

declare -A DATA_DIR
if has "$DATASETS" corpus; then
	if [[ ! -f $CORPUS_CACHE/corpus.json ]]; then
		log "generating corpus of $FILES invoices into $CORPUS_CACHE"
		mkdir -p "$CACHE_ROOT"
		rm -rf "$CORPUS_CACHE.tmp"
		"$CORPUS_TOOL" corpus generate "$CORPUS_CACHE.tmp" --files "$FILES" --seed 1 >&2
		mv "$CORPUS_CACHE.tmp" "$CORPUS_CACHE"
	else
		log "using cached corpus $CORPUS_CACHE"
	fi
	DATA_DIR[corpus]=$CORPUS_CACHE
fi
if has "$DATASETS" gosrc; then
	GOSRC=$(go env GOROOT)/src
	[[ -d $GOSRC ]] || die "$GOSRC does not exist"
	log "copying $GOSRC"
	cp -a "$GOSRC" "$WORK/gosrc-master"
	DATA_DIR[gosrc]=$WORK/gosrc-master
fi

# Deterministic change of the Go tree: a comment line appended to every 20th
# file (sorted by name) and one new file per 100 files.
mutate_gosrc() {
	local src=$1 i=0 f
	(
		cd "$src"
		find . -type f | LC_ALL=C sort >"$WORK/gosrc-files"
		awk 'NR % 20 == 0' "$WORK/gosrc-files" | while IFS= read -r f; do
			printf '\n// changed by einvault bench\n' >>"$f"
		done
		mkdir -p einvault_bench_added
		awk 'NR % 100 == 0' "$WORK/gosrc-files" | while IFS= read -r f; do
			i=$((i + 1))
			{ cat "$f"; printf '\n// added by einvault bench, file %d\n' "$i"; } >"einvault_bench_added/added_$i.txt"
		done
	)
}

mutate_dataset() {
	case $1 in
	corpus) "$CORPUS_TOOL" corpus mutate "$SRC" --seed 1 ;;
	gosrc) mutate_gosrc "$SRC" ;;
	esac
}

# --- measuring ---------------------------------------------------------------
SRC=$WORK/src
REPO=$WORK/repo
RESTORE=$WORK/restore
export RESTIC_REPOSITORY=$REPO RESTIC_PASSWORD=$PASSWORD
export BORG_PASSPHRASE=$PASSWORD BORG_BASE_DIR=$WORK/borg-base BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export EINVAULT_REPO=$REPO EINVAULT_PASSWORD=$PASSWORD
export XDG_CACHE_HOME=$WORK/cache # restic's and einvault's caches: fresh for every run

# tool_cmd TOOL OP: the command line of one operation, into the array CMD.
tool_cmd() {
	case $1:$2 in
	einvault:init) CMD=("$EINVAULT" init) ;;
	einvault:backup1 | einvault:backup2) CMD=("$EINVAULT" backup "$SRC") ;;
	einvault:restore) CMD=("$EINVAULT" restore latest --target "$RESTORE") ;;
	einvault:check) CMD=("$EINVAULT" check --read-data) ;;
	restic:init) CMD=(restic init) ;;
	restic:backup1 | restic:backup2) CMD=(restic backup --host bench "$SRC") ;;
	restic:restore) CMD=(restic restore latest --target "$RESTORE") ;;
	restic:check) CMD=(restic check --read-data) ;;
	borg:init) CMD=(borg init -e repokey-blake2 "$REPO") ;;
	borg:backup1 | borg:backup2) CMD=(borg create --compression "zstd,3" "$REPO::$2" "$SRC") ;;
	borg:restore) CMD=(env -C "$RESTORE" borg extract "$REPO::backup2") ;; # extracts into the cwd, paths without the leading /
	borg:check) CMD=(borg check --verify-data "$REPO") ;;
	esac
}

# measure DS TOOL OP RUN: time one operation; store "seconds peak-RSS-KiB" or FAIL.
measure() {
	local ds=$1 tool=$2 op=$3 run=$4 out=$RES/$1.$2.$3.$4 lg=$LOGS/$1-$2-$3-run$4.log
	tool_cmd "$tool" "$op"
	if /usr/bin/time -f '%e %M' -o "$WORK/time.out" "${CMD[@]}" >"$lg" 2>&1; then
		tail -n 1 "$WORK/time.out" >"$out"
		local s r
		read -r s r <"$out"
		log "  $tool $op: ${s}s, $((r / 1024)) MiB peak RSS"
	else
		echo FAIL >"$out"
		log "  $tool $op FAILED: ${CMD[*]} (log $lg):"
		tail -n 8 "$lg" | sed 's/^/      /' >&2
		return 1
	fi
}

fail_rest() { # mark the remaining operations of a tool/run as failed
	local ds=$1 tool=$2 run=$3 op
	shift 3
	for op in "$@"; do echo FAIL >"$RES/$ds.$tool.$op.$run"; done
}

# listing DIR: one line per file and symlink: path, type, size, mode, mtime
# (whole seconds), link target. Contents are compared by diff -r.
listing() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '%p\t%y\t%s\t%m\t%T@\t%l\n' |
		awk -F'\t' -v OFS='\t' '{ $5 = int($5); print }' | LC_ALL=C sort)
}

verify_restore() {
	local ds=$1 tool=$2 run=$3 restored=$RESTORE$SRC lg=$LOGS/$1-$2-verify-run$3.log
	# restic and einvault restore to TARGET/<absolute path>; borg extracts
	# the stored path without its leading / into the cwd: the same place.
	if [[ ! -d $restored ]]; then
		echo "restored tree $restored does not exist" >"$lg"
	elif diff -r --no-dereference -q "$SRC" "$restored" >"$lg" 2>&1 &&
		diff <(listing "$SRC") <(listing "$restored") >>"$lg" 2>&1; then
		echo ok >"$RES/$ds.$tool.verify.$run"
		log "  $tool restore verified: contents, types, sizes, modes and mtimes equal"
		return 0
	fi
	echo FAIL >"$RES/$ds.$tool.verify.$run"
	log "  $tool RESTORE VERIFICATION FAILED (log $lg):"
	head -n 20 "$lg" | sed 's/^/      /' >&2
	return 1
}

run_tool() {
	local ds=$1 tool=$2 run=$3
	rm -rf "$SRC" "$REPO" "$RESTORE" "$WORK/cache" "$BORG_BASE_DIR"
	mkdir -p "$RESTORE" "$WORK/cache" "$BORG_BASE_DIR"
	cp -a "${DATA_DIR[$ds]}" "$SRC"
	sync
	if [[ $tool == einvault && $einvault_built == 0 ]]; then
		fail_rest "$ds" "$tool" "$run" backup1 backup2 restore check size verify
		return 1
	fi
	tool_cmd "$tool" init
	if ! "${CMD[@]}" >"$LOGS/$ds-$tool-init-run$run.log" 2>&1; then
		log "  $tool init FAILED (log $LOGS/$ds-$tool-init-run$run.log):"
		tail -n 8 "$LOGS/$ds-$tool-init-run$run.log" | sed 's/^/      /' >&2
		fail_rest "$ds" "$tool" "$run" backup1 backup2 restore check size verify
		return 1
	fi
	local ok=0
	measure "$ds" "$tool" backup1 "$run" || ok=1
	mutate_dataset "$ds" >"$LOGS/$ds-$tool-mutate-run$run.log" 2>&1 || die "mutating $ds failed (log $LOGS/$ds-$tool-mutate-run$run.log)"
	sync
	measure "$ds" "$tool" backup2 "$run" || ok=1
	if [[ $ok == 0 ]]; then
		du -sb "$REPO" | cut -f1 >"$RES/$ds.$tool.size.$run"
		measure "$ds" "$tool" restore "$run" || ok=1
		if [[ $ok == 0 ]]; then verify_restore "$ds" "$tool" "$run" || ok=1; else echo FAIL >"$RES/$ds.$tool.verify.$run"; fi
		measure "$ds" "$tool" check "$run" || ok=1
	else
		fail_rest "$ds" "$tool" "$run" restore check size verify
	fi
	rm -rf "$SRC" "$REPO" "$RESTORE"
	return $ok
}

# --- reporting ---------------------------------------------------------------
# median DS TOOL OP FIELD: median over the runs of field 1 (seconds or bytes)
# or 2 (KiB); FAIL if any run failed, "-" if the tool was not run.
median() {
	local ds=$1 tool=$2 op=$3 field=$4 run vals=() f v
	has "$TOOLS" "$tool" || { echo -; return; }
	for ((run = 1; run <= RUNS; run++)); do
		f=$RES/$ds.$tool.$op.$run
		[[ -f $f ]] || { echo -; return; }
		v=$(cut -d' ' -f"$field" "$f")
		[[ $v == FAIL ]] && { echo FAIL; return; }
		vals+=("$v")
	done
	printf '%s\n' "${vals[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

fmt_val() { # fmt_val VALUE KIND: seconds | kib | bytes
	case $1 in FAIL | -) echo "$1"; return ;; esac
	case $2 in
	seconds) awk -v v="$1" 'BEGIN {printf "%.2f s", v}' ;;
	kib) awk -v v="$1" 'BEGIN {printf "%.1f MiB", v / 1024}' ;;
	bytes) awk -v v="$1" 'BEGIN {printf "%.1f MiB", v / 1048576}' ;;
	esac
}

ratio() {
	case "$1$2" in *FAIL* | *-*) echo -; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

report() {
	local ds=$1 out=$2 row op field kind label e r b
	local files bytes
	files=$(find "${DATA_DIR[$ds]}" -type f | wc -l)
	bytes=$(du -sb "${DATA_DIR[$ds]}" | cut -f1)
	{
		echo "# einvault benchmark: $ds"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(hostname), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
		case $ds in
		corpus) echo "- dataset: generated e-invoice corpus, $FILES invoices (einvault corpus generate --seed 1): $files files, $(fmt_val "$bytes" bytes)" ;;
		gosrc) echo "- dataset: \$(go env GOROOT)/src of $(go version | awk '{print $3}'): $files files, $(fmt_val "$bytes" bytes)" ;;
		esac
		case $ds in
		corpus) echo "- change before backup2: einvault corpus mutate --seed 1 (5% of files changed, 1% new invoices, rows appended to the dump)" ;;
		gosrc) echo "- change before backup2: a comment line appended to every 20th file (sorted by name), one new file per 100 files" ;;
		esac
		echo "- runs: $RUNS per tool, median reported; fresh repository and fresh copy of the dataset per run; warm page cache (dropping it is not possible here)"
		echo "- versions: einvault $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] && echo ' (dirty tree)'); $(restic version 2>/dev/null | awk '{print $1, $2}' || echo 'restic -'); $(borg --version 2>/dev/null || echo 'borg -')"
		echo "- settings: restic defaults (repository v2, compression auto); borg repokey-blake2 with --compression zstd,3 (borg's default is lz4); einvault defaults"
		echo "- restore is verified against the source (diff -r, plus type/size/mode/mtime listing)"
		echo
		echo "| operation | einvault | restic | borg | einvault/restic | einvault/borg |"
		echo "|---|---:|---:|---:|---:|---:|"
		for row in "backup1:1:seconds:initial backup" "backup2:1:seconds:second backup (after changes)" "restore:1:seconds:full restore" "check:1:seconds:check with full data read" \
			"size:1:bytes:repository size (after backup2)" \
			"backup1:2:kib:peak RSS initial backup" "backup2:2:kib:peak RSS second backup" "restore:2:kib:peak RSS restore" "check:2:kib:peak RSS check"; do
			IFS=: read -r op field kind label <<<"$row"
			e=$(median "$ds" einvault "$op" "$field")
			r=$(median "$ds" restic "$op" "$field")
			b=$(median "$ds" borg "$op" "$field")
			echo "| $label | $(fmt_val "$e" "$kind") | $(fmt_val "$r" "$kind") | $(fmt_val "$b" "$kind") | $(ratio "$e" "$r") | $(ratio "$e" "$b") |"
		done
		local t v
		printf '| restore verified |'
		for t in "${ALL_TOOLS[@]}"; do
			v=-
			if has "$TOOLS" "$t"; then
				v=ok
				for ((run = 1; run <= RUNS; run++)); do
					[[ $(cat "$RES/$ds.$t.verify.$run" 2>/dev/null) == ok ]] || v=FAIL
				done
			fi
			printf ' %s |' "$v"
		done
		echo ' | |'
		echo
		echo "Ratios below 1 mean einvault is faster or smaller. Wall seconds and peak RSS from /usr/bin/time -f '%e %M'."
	} >"$out"
}

# --- main ----------------------------------------------------------------------
mkdir -p "$RESULTS"
DATE=$(date +%Y-%m-%d)
SUFFIX=""
[[ $QUICK == 1 ]] && SUFFIX=-quick
for ds in ${DATASETS//,/ }; do
	for ((run = 1; run <= RUNS; run++)); do
		for tool in "${ALL_TOOLS[@]}"; do
			has "$TOOLS" "$tool" || continue
			log "[$ds run $run/$RUNS] $tool"
			if ! run_tool "$ds" "$tool" "$run"; then
				[[ $tool == einvault ]] && EXIT=1
			fi
			if [[ $(cat "$RES/$ds.$tool.verify.$run" 2>/dev/null) == FAIL && -f $RES/$ds.$tool.restore.$run && $(cat "$RES/$ds.$tool.restore.$run") != FAIL ]]; then
				EXIT=1 # a restore that ran but returned different data
			fi
		done
	done
	out=$RESULTS/$DATE-$ds$SUFFIX.md
	report "$ds" "$out"
	echo
	cat "$out"
	echo
	log "wrote $out"
done
if [[ $EXIT != 0 ]]; then
	log "FAILED: an einvault operation or a restore verification failed (logs in $WORK; BENCH_KEEP=1 keeps them)"
fi
exit $EXIT
