#!/usr/bin/env bash
# bench/pg.sh: PostgreSQL physical backups, PITR and WAL archiving,
# einvault against pgBackRest in the same run, plus the logical backup
# against plain pg_dump (issue 5, "How fast").
#
#   base backup   einvault pg basebackup        vs pgbackrest backup --type=full
#                 (pgBackRest: zstd, aes-256-cbc, process-max 2)
#   second base   einvault pg basebackup of the unchanged cluster: bytes added
#                 (target < 1% of the cluster)
#   PITR restore  einvault pg restore --latest until the promoted server
#                 answers (wall time less the verification after it, from
#                 --json)              vs pgbackrest restore + start until the
#                 server answers and left recovery (target ratio <= 1.0);
#                 the full time including verification is printed too
#   WAL push      real 16 MiB segments, one process per segment:
#                 einvault-wal wal-push --key-cache vs pgbackrest archive-push
#                 (bench/wal.sh measures only this, with einvault wal-push too)
#                 (target: einvault >= 3x segments/s)
#   logical       einvault backup pg://...      vs pg_dump -Fc -f file
#                 (target ratio <= 1.10)
#
# Prints medians of BENCH_RUNS runs and ratios; writes a copy to
# bench/results/. Knobs: BENCH_SCALE (pgbench scale; default 130, about
# 2 GB; 5 with BENCH_QUICK=1), BENCH_RUNS (3), BENCH_SEGMENTS (WAL segments
# pushed per run; 32, 8 quick), BENCH_WORK, BENCH_KEEP=1. Needs root
# (PostgreSQL runs as einvault-test), postgresql 15 and pgbackrest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then SCALE=${BENCH_SCALE:-5}; SEGS=${BENCH_SEGMENTS:-8}; else SCALE=${BENCH_SCALE:-130}; SEGS=${BENCH_SEGMENTS:-32}; fi
RUNS=${BENCH_RUNS:-3}
log() { echo "bench/pg: $*" >&2; }
die() { log "$*"; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root (PostgreSQL is started as the user einvault-test)"
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[[ -x $BIN/initdb ]] || die "PostgreSQL not found under /usr/lib/postgresql"
command -v pgbackrest >/dev/null || die "pgbackrest not found: apt-get install pgbackrest"
SU=einvault-test
id $SU >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /bin/sh $SU
as() { runuser -u $SU -- "$@"; }

WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-bench-pg.XXXXXX)}
mkdir -p "$WORK" && chmod 755 "$WORK" && chown $SU: "$WORK"
cleanup() {
	for d in "$WORK"/pgdata "$WORK"/r-*; do
		[[ -f $d/postmaster.pid ]] && as "$BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
	done
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
EV=$WORK/einvault EVWAL=$WORK/einvault-wal # beside einvault: pg restore uses it for restore_command
(cd "$ROOT" && go build -o "$EV" ./cmd/einvault && go build -o "$EVWAL" ./cmd/einvault-wal) || die "build failed"
chmod 755 "$EV" "$EVWAL"
export EINVAULT_PASSWORD=einvault-bench-password
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

PORT=$(( 20000 + RANDOM % 20000 ))
PGD=$WORK/pgdata
REPO=$WORK/repo
KEYS=$WORK/keys
PBR=$WORK/pgbackrest
mkdir -p "$PBR" && chown $SU: "$PBR"
cat >"$PBR/pgbackrest.conf" <<CONF
[global]
repo1-path=$PBR/repo
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=einvault-bench-cipher
compress-type=zst
process-max=2
log-path=$PBR
lock-path=$PBR
spool-path=$PBR
log-level-console=warn
start-fast=y
archive-check=n

[bench]
pg1-path=$PGD
pg1-port=$PORT
pg1-socket-path=$WORK
pg1-user=postgres
CONF
chown $SU: "$PBR/pgbackrest.conf"
PB="pgbackrest --config=$PBR/pgbackrest.conf --stanza=bench"

"$EV" -r "$REPO" init -q
"$EV" -r "$REPO" key cache --file "$KEYS" --owner $SU >/dev/null
chown -R $SU: "$REPO"
as "$BIN/initdb" -D "$PGD" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
cat >>"$PGD/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
wal_level = replica
archive_mode = on
archive_command = '$EVWAL -r $REPO wal-push --key-cache $KEYS %p && $PB archive-push %p'
max_wal_size = '1GB'
shared_buffers = '128MB'
CONF
as "$BIN/pg_ctl" -D "$PGD" -l "$WORK/server.log" -w start >/dev/null
DSN="pg://postgres@/bench?host=$WORK&port=$PORT"
as $PB stanza-create >/dev/null
as "$BIN/createdb" -h "$WORK" -p "$PORT" -U postgres bench
log "pgbench -i -s $SCALE ..."
as "$BIN/pgbench" -h "$WORK" -p "$PORT" -U postgres -i -q -s "$SCALE" bench >/dev/null 2>&1
psql() { as "$BIN/psql" -h "$WORK" -p "$PORT" -U postgres -XAtq "$@"; }
psql -d bench -c "CHECKPOINT" >/dev/null
DBSIZE=$(psql -d bench -c "SELECT pg_database_size('bench')")
log "database: $DBSIZE bytes"

# --- base backups ------------------------------------------------------------
ev_base=() pb_base=()
for i in $(seq "$RUNS"); do
	t0=$(now); "$EV" -r "$REPO" pg basebackup -q "pg://postgres@/postgres?host=$WORK&port=$PORT" ; t1=$(now)
	ev_base+=("$(elapsed "$t0" "$t1")")
	t0=$(now); as $PB backup --type=full >/dev/null; t1=$(now)
	pb_base+=("$(elapsed "$t0" "$t1")")
done
# Second base backup of the unchanged cluster (no writes since the last one).
psql -d postgres -c "CHECKPOINT" >/dev/null
SECOND=$("$EV" -r "$REPO" --json pg basebackup "pg://postgres@/postgres?host=$WORK&port=$PORT" | tail -1)
ADDED=$(echo "$SECOND" | sed -n 's/.*"bytes_added":\([0-9]*\).*/\1/p')
TOTAL=$(echo "$SECOND" | sed -n 's/.*"total_bytes":\([0-9]*\).*/\1/p')
ADDED_PCT=$(awk -v a="$ADDED" -v b="$TOTAL" 'BEGIN { printf "%.3f", 100 * a / b }')

# --- PITR restore to the latest point --------------------------------------------
as "$BIN/pgbench" -h "$WORK" -p "$PORT" -U postgres -T 5 -c 2 bench >/dev/null 2>&1
psql -d postgres -c "SELECT pg_switch_wal()" >/dev/null
sleep 3
ev_pitr=() ev_answer=() pb_pitr=()
for i in $(seq "$RUNS"); do
	RP=$(( PORT + 10 + i ))
	t0=$(now)
	OUT=$("$EV" -r "$REPO" --json pg restore --latest --pgdata "$WORK/r-ev$i" --port "$RP" --socket-dir "$WORK" --run-as $SU)
	t1=$(now); ev_pitr+=("$(elapsed "$t0" "$t1")")
	# Until the server answers: the wall time less what came after the
	# first answer (recovery-point query and verification), which the
	# command reports as rto_seconds - rto_to_service_seconds.
	after=$(echo "$OUT" | tr -d ' \n' | awk '{ match($0, /"rto_seconds":[0-9.e+-]+/); r = substr($0, RSTART + 14, RLENGTH - 14); match($0, /"rto_to_service_seconds":[0-9.e+-]+/); s = substr($0, RSTART + 25, RLENGTH - 25); printf "%.3f", r - s }')
	ev_answer+=("$(awk -v w="$(elapsed "$t0" "$t1")" -v a="$after" 'BEGIN { printf "%.3f", w - a }')")
	as "$BIN/pg_ctl" -D "$WORK/r-ev$i" -m immediate stop >/dev/null; rm -rf "$WORK/r-ev$i"
	mkdir -p "$WORK/r-pb$i" && chown $SU: "$WORK/r-pb$i" && chmod 700 "$WORK/r-pb$i"
	t0=$(now)
	as $PB restore --pg1-path="$WORK/r-pb$i" --type=default >/dev/null
	echo "port = $RP" >>"$WORK/r-pb$i/postgresql.auto.conf"
	echo "archive_mode = off" >>"$WORK/r-pb$i/postgresql.auto.conf"
	as "$BIN/pg_ctl" -D "$WORK/r-pb$i" -l "$WORK/r-pb$i.log" start >/dev/null
	until [[ $(as "$BIN/psql" -h "$WORK" -p "$RP" -U postgres -XAtq -d postgres -c "SELECT NOT pg_is_in_recovery()" 2>/dev/null) == t ]]; do sleep 0.1; done
	t1=$(now); pb_pitr+=("$(elapsed "$t0" "$t1")")
	as "$BIN/pg_ctl" -D "$WORK/r-pb$i" -m immediate stop >/dev/null; rm -rf "$WORK/r-pb$i"
done

# --- WAL push rate: real 16 MiB segments, one process per segment ------------------
SEGDIR=$WORK/segments
mkdir -p "$SEGDIR"
n=0
for f in $(ls "$PGD/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort); do
	cp "$PGD/pg_wal/$f" "$SEGDIR/"; n=$((n + 1))
	[[ $n -ge $SEGS ]] && break
done
while [[ $n -lt $SEGS ]]; do # recycled segments run out on small clusters: make more real WAL
	as "$BIN/pgbench" -h "$WORK" -p "$PORT" -U postgres -T 2 -c 2 bench >/dev/null 2>&1
	f=$(psql -d postgres -c "SELECT pg_walfile_name(pg_switch_wal())")
	[[ -f $PGD/pg_wal/$f && ! -f $SEGDIR/$f ]] && cp "$PGD/pg_wal/$f" "$SEGDIR/" && n=$((n + 1))
done
chown -R $SU: "$SEGDIR"
ev_wal=() pb_wal=()
for i in $(seq "$RUNS"); do
	WR=$WORK/walrepo$i
	"$EV" -r "$WR" init -q && "$EV" -r "$WR" key cache --file "$WORK/walkeys$i" --owner $SU >/dev/null && chown -R $SU: "$WR"
	sed -i "s|^repo1-path=.*|repo1-path=$PBR/walrepo$i|" "$PBR/pgbackrest.conf"
	as $PB stanza-create >/dev/null 2>&1 || true
	t0=$(now)
	# One 'sh -c archive_command' per segment, as PostgreSQL runs it (runuser
	# once per run: its PAM session costs more than a push).
	as /bin/sh -c 'cmd=$1; shift; for f in "$@"; do /bin/sh -c "$cmd $f" || exit 1; done' push "$EVWAL -r $WR wal-push --key-cache $WORK/walkeys$i" "$SEGDIR"/*
	t1=$(now); ev_wal+=("$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", n / (b - a) }')")
	t0=$(now)
	as /bin/sh -c 'cmd=$1; shift; for f in "$@"; do /bin/sh -c "$cmd $f" >/dev/null || exit 1; done' push "$PB archive-push" "$SEGDIR"/*
	t1=$(now); pb_wal+=("$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", n / (b - a) }')")
	rm -rf "$WR" "$PBR/walrepo$i"
done

# --- logical backup vs pg_dump -Fc ---------------------------------------------------
ev_dump=() pg_dump_t=()
for i in $(seq "$RUNS"); do
	LR=$WORK/logical$i
	"$EV" -r "$LR" init -q
	t0=$(now); "$EV" -r "$LR" -q backup "$DSN"; t1=$(now)
	ev_dump+=("$(elapsed "$t0" "$t1")")
	t0=$(now); "$BIN/pg_dump" -Fc -f "$WORK/plain$i.dump" "postgresql://postgres@/bench?host=$WORK&port=$PORT"; t1=$(now)
	pg_dump_t+=("$(elapsed "$t0" "$t1")")
	rm -rf "$LR" "$WORK/plain$i.dump"
done

m() { printf '%s\n' "$@" | median; }
EVB=$(m "${ev_base[@]}") PBB=$(m "${pb_base[@]}") EVP=$(m "${ev_pitr[@]}") PBP=$(m "${pb_pitr[@]}") EVA=$(m "${ev_answer[@]}")
EVW=$(m "${ev_wal[@]}") PBW=$(m "${pb_wal[@]}") EVD=$(m "${ev_dump[@]}") PGDT=$(m "${pg_dump_t[@]}")
RESULT=$(cat <<OUT
# bench/pg.sh $(date -u +%Y-%m-%dT%H:%MZ) scale=$SCALE database=$DBSIZE bytes runs=$RUNS segments=$n $(nproc) cores load=$(cut -d' ' -f1-3 /proc/loadavg)
base backup (s)          einvault $EVB   pgbackrest $PBB   ratio einvault/pgbackrest $(ratio "$EVB" "$PBB")
second base (unchanged)  added $ADDED of $TOTAL bytes = $ADDED_PCT% (target < 1%)
PITR restore latest (s)  until the server answers: einvault $EVA   pgbackrest $PBP   ratio $(ratio "$EVA" "$PBP") (target <= 1.0)
PITR incl. verification  einvault $EVP (amcheck etc.; pgbackrest does none)   ratio to pgbackrest $(ratio "$EVP" "$PBP")
WAL push (segments/s)    einvault $EVW   pgbackrest $PBW   ratio einvault/pgbackrest $(ratio "$EVW" "$PBW") (target >= 3)
logical backup (s)       einvault $EVD   pg_dump -Fc $PGDT   ratio $(ratio "$EVD" "$PGDT") (target <= 1.10)
raw: base ev=[${ev_base[*]}] pb=[${pb_base[*]}] pitr ev=[${ev_pitr[*]}] answer=[${ev_answer[*]}] pb=[${pb_pitr[*]}] wal ev=[${ev_wal[*]}] pb=[${pb_wal[*]}] dump ev=[${ev_dump[*]}] pg=[${pg_dump_t[*]}]
OUT
)
echo "$RESULT"
mkdir -p "$ROOT/bench/results"
suffix=""; [[ $QUICK == 1 ]] && suffix="-short"
echo "$RESULT" >>"$ROOT/bench/results/$(date -u +%Y-%m-%d)-pg$suffix.md"
