#!/usr/bin/env bash
# bench/wal.sh: WAL push rate, einvault against pgBackRest in the same run
# (issue 5, "How fast": real 16 MiB segments through archive_command, one
# process per segment; target einvault >= 3x pgBackRest's segments/s).
#
# It builds a PostgreSQL cluster once, runs pgbench with archive_command
# copying every finished segment aside until BENCH_SEGMENTS real segments
# are collected, then pushes them, one process per segment as PostgreSQL
# does, with
#   einvault-wal push --key-cache K SEG   (the small archive_command binary)
#   einvault wal-push --key-cache K SEG   (the full CLI, for reference)
#   pgbackrest archive-push SEG           (zstd, aes-256-cbc, like bench/pg.sh)
# interleaved, BENCH_RUNS times, into fresh repositories each run, and
# prints the median segments/s and the ratios.
#
# Knobs: BENCH_SEGMENTS (32), BENCH_RUNS (3), BENCH_WORK (scratch dir),
# BENCH_SEGDIR (reuse a directory of collected segments), BENCH_KEEP=1.
# Needs root (PostgreSQL runs as einvault-test), postgresql and pgbackrest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SEGS=${BENCH_SEGMENTS:-32}
RUNS=${BENCH_RUNS:-3}
log() { echo "bench/wal: $*" >&2; }
die() { log "$*"; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root (PostgreSQL is started as the user einvault-test)"
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[[ -x $BIN/initdb ]] || die "PostgreSQL not found under /usr/lib/postgresql"
command -v pgbackrest >/dev/null || die "pgbackrest not found: apt-get install pgbackrest"
SU=einvault-test
id $SU >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /bin/sh $SU
as() { runuser -u $SU -- "$@"; }

WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-bench-wal.XXXXXX)}
mkdir -p "$WORK" && chmod 755 "$WORK" && chown $SU: "$WORK"
PGD=$WORK/pgdata
cleanup() {
	[[ -f $PGD/postmaster.pid ]] && as "$BIN/pg_ctl" -D "$PGD" -m immediate stop >/dev/null 2>&1 || true
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
EV=$WORK/einvault EVW=$WORK/einvault-wal
(cd "$ROOT" && go build -o "$EV" ./cmd/einvault && go build -o "$EVW" ./cmd/einvault-wal) || die "build failed"
chmod 755 "$EV" "$EVW"
export EINVAULT_PASSWORD=einvault-bench-password
now() { date +%s.%N; }
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", n / (b - a) }'; }

# --- collect real segments ---------------------------------------------------------
SEGDIR=${BENCH_SEGDIR:-$WORK/segments}
mkdir -p "$SEGDIR" && chown $SU: "$SEGDIR"
have() { ls "$SEGDIR" | grep -cE '^[0-9A-F]{24}$' || true; }
if [[ $(have) -lt $SEGS || ! -f $SEGDIR/.pgdata/global/pg_control ]]; then
	PORT=$((20000 + RANDOM % 20000))
	as "$BIN/initdb" -D "$PGD" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
	cat >>"$PGD/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $SEGDIR/%f && cp %p $SEGDIR/%f'
max_wal_size = '1GB'
synchronous_commit = off
CONF
	as "$BIN/pg_ctl" -D "$PGD" -l "$WORK/server.log" -w start >/dev/null
	as "$BIN/createdb" -h "$WORK" -p "$PORT" -U postgres bench
	log "pgbench until $SEGS segments are archived ..."
	as "$BIN/pgbench" -h "$WORK" -p "$PORT" -U postgres -i -q -s 10 bench >/dev/null 2>&1
	# Segments fill up by themselves, as on a busy server: no pg_switch_wal,
	# which would archive mostly empty (all-zero, very compressible) segments.
	while [[ $(have) -lt $SEGS ]]; do
		as "$BIN/pgbench" -h "$WORK" -p "$PORT" -U postgres -T 5 -c 4 bench >/dev/null 2>&1
	done
	as "$BIN/pg_ctl" -D "$PGD" -m fast stop >/dev/null
	# pgBackRest reads the cluster's control file (system identifier and
	# version) on every archive-push: keep it with the segments.
	mkdir -p "$SEGDIR/.pgdata/global"
	cp "$PGD/global/pg_control" "$SEGDIR/.pgdata/global/" && cp "$PGD/PG_VERSION" "$SEGDIR/.pgdata/"
	chown -R $SU: "$SEGDIR/.pgdata" && chmod 700 "$SEGDIR/.pgdata"
fi
[[ -f $SEGDIR/.pgdata/global/pg_control ]] || die "$SEGDIR/.pgdata/global/pg_control missing: collect the segments with this script"
mapfile -t FILES < <(ls "$SEGDIR" | grep -E '^[0-9A-F]{24}$' | sort | head -n "$SEGS")
N=${#FILES[@]}
PATHS=()
for f in "${FILES[@]}"; do PATHS+=("$SEGDIR/$f"); done
log "$N segments in $SEGDIR ($(du -sh "$SEGDIR" | cut -f1))"

# --- pgBackRest ---------------------------------------------------------------------
PBR=$WORK/pgbackrest
mkdir -p "$PBR" && chown $SU: "$PBR"
pbconf() {
	cat >"$PBR/pgbackrest.conf" <<CONF
[global]
repo1-path=$1
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=einvault-bench-cipher
compress-type=zst
log-path=$PBR
lock-path=$PBR
spool-path=$PBR
log-level-console=warn
archive-check=n

[bench]
pg1-path=$SEGDIR/.pgdata
CONF
	chown $SU: "$PBR/pgbackrest.conf"
}
PB="pgbackrest --config=$PBR/pgbackrest.conf --stanza=bench"

# push_all TOOL REPO: archive every segment the way PostgreSQL does, one
# 'sh -c ARCHIVE_COMMAND' per segment, as the service user (runuser once
# per run: its PAM session would otherwise cost more than a push).
push_all() {
	local cmd
	case $1 in
	evw) cmd="$EVW -r $2 wal-push --key-cache $2.keys" ;;
	ev) cmd="$EV -r $2 wal-push --key-cache $2.keys" ;;
	pb) cmd="$PB archive-push" ;;
	esac
	as /bin/sh -c 'cmd=$1; shift; for f in "$@"; do /bin/sh -c "$cmd $f" >/dev/null || exit 1; done' push "$cmd" "${PATHS[@]}"
}
new_ev_repo() {
	"$EV" -r "$1" init -q && "$EV" -r "$1" key cache --file "$1.keys" --owner $SU >/dev/null && chown -R $SU: "$1"
}

evw_r=() ev_r=() pb_r=()
for i in $(seq "$RUNS"); do
	sync
	R=$WORK/evw$i; new_ev_repo "$R"
	t0=$(now); push_all evw "$R"; t1=$(now); evw_r+=("$(rate "$N" "$t0" "$t1")")
	sync
	R=$WORK/ev$i; new_ev_repo "$R"
	t0=$(now); push_all ev "$R"; t1=$(now); ev_r+=("$(rate "$N" "$t0" "$t1")")
	sync
	pbconf "$PBR/repo$i"
	as $PB stanza-create --no-online >/dev/null 2>&1 || as $PB stanza-create >/dev/null 2>&1 || true
	t0=$(now); push_all pb; t1=$(now); pb_r+=("$(rate "$N" "$t0" "$t1")")
	"$EVW" -r "$WORK/evw$i" fetch --key-cache "$WORK/evw$i.keys" "${FILES[0]}" "$WORK/check.seg"
	cmp -s "$WORK/check.seg" "$SEGDIR/${FILES[0]}" || die "einvault-wal fetch returned other bytes than were pushed"
	rm -rf "$WORK/evw$i" "$WORK/ev$i" "$PBR/repo$i" "$WORK/check.seg"
done
EVWM=$(echo "${evw_r[*]}" | median) EVM=$(echo "${ev_r[*]}" | median) PBM=$(echo "${pb_r[*]}" | median)
RESULT=$(
	cat <<OUT
## WAL push $(date -u +%Y-%m-%dT%H:%MZ), $N real segments, median of $RUNS, load $(cut -d' ' -f1-3 /proc/loadavg)
einvault-wal push (segments/s)   $EVWM   ratio vs pgbackrest $(ratio "$EVWM" "$PBM") (target >= 3)
einvault wal-push (segments/s)   $EVM   ratio vs pgbackrest $(ratio "$EVM" "$PBM")
pgbackrest archive-push          $PBM
raw: einvault-wal=[${evw_r[*]}] einvault=[${ev_r[*]}] pgbackrest=[${pb_r[*]}]
OUT
)
echo "$RESULT"
mkdir -p "$ROOT/bench/results"
echo "$RESULT" >>"$ROOT/bench/results/$(date -u +%Y-%m-%d)-wal.md"
