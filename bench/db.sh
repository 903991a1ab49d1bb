#!/usr/bin/env bash
# bench/db.sh: logical database backups, einvault against the plain tool
# writing to a local file, in the same run (issue 5, "How fast", logical
# part; PostgreSQL has its own script).
#
#   MariaDB: einvault backup mysql://... (mariadb-dump streamed into a new
#            repository, plus row counts and CHECKSUM TABLE)
#            vs mariadb-dump --single-transaction ... > file
#   SQLite:  einvault backup sqlite:/path (online backup API, then stored)
#            vs sqlite3 db ".backup file" (the same API, to a local file)
#
# Prints the median wall time of BENCH_RUNS runs and the ratio
# einvault / plain. Target: ratio <= 1.10.
#
# Knobs: BENCH_ROWS (invoice rows; default 400000, about 400 MB of table
# data; 20000 with BENCH_QUICK=1), BENCH_RUNS (default 3), BENCH_WORK,
# BENCH_KEEP=1. Needs root (MariaDB runs as the unprivileged user
# einvault-test, created if missing), mariadb-server, mariadb-client and,
# for the SQLite part, the sqlite3 program.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then ROWS=${BENCH_ROWS:-20000}; else ROWS=${BENCH_ROWS:-400000}; fi
RUNS=${BENCH_RUNS:-3}
log() { echo "bench/db: $*" >&2; }
die() { log "$*"; exit 1; }
[[ $ROWS =~ ^[0-9]+$ && $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "BENCH_ROWS and BENCH_RUNS must be positive integers"
[[ $(id -u) == 0 ]] || die "run as root (MariaDB is started as the user einvault-test)"
for p in mariadbd mariadb-install-db mariadb mariadb-dump; do
	command -v "$p" >/dev/null || [[ -x /usr/sbin/$p ]] || die "$p not found: install mariadb-server and mariadb-client"
done
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)

WORK=${BENCH_WORK:-$(mktemp -d /tmp/einvault-bench-db.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"
PID=
cleanup() {
	[[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
EV=$WORK/einvault
(cd "$ROOT" && go build -o "$EV" ./cmd/einvault) || die "build failed"
export EINVAULT_PASSWORD=einvault-bench-password EINVAULT_INSECURE_TEST_KDF=${EINVAULT_INSECURE_TEST_KDF:-0}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# --- MariaDB ---------------------------------------------------------------
id einvault-test >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /bin/sh einvault-test
M=$WORK/mariadb
mkdir -p "$M" && chown einvault-test: "$M"
PORT=$(( 20000 + RANDOM % 20000 ))
cat >"$M/my.cnf" <<CNF
[mariadbd]
datadir=$M/data
socket=$M/sock
port=$PORT
bind-address=127.0.0.1
log-error=$M/server.log
pid-file=$M/pid
skip-name-resolve
skip-log-bin
innodb_buffer_pool_size=256M
innodb_log_file_size=256M
innodb_flush_log_at_trx_commit=2
CNF
log "initialising MariaDB"
runuser -u einvault-test -- mariadb-install-db --defaults-file="$M/my.cnf" --auth-root-authentication-method=normal --skip-test-db --user=einvault-test >"$M/install.log" 2>&1 || die "mariadb-install-db failed: see $M/install.log"
runuser -u einvault-test -- "$MARIADBD" --defaults-file="$M/my.cnf" &
PID=$!
for _ in $(seq 1 300); do mariadb --no-defaults -uroot --socket="$M/sock" -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
SQL() { mariadb --no-defaults -uroot --socket="$M/sock" "$@"; }
SQL -e "SELECT 1" >/dev/null || die "MariaDB did not start: see $M/server.log"
log "loading $ROWS invoice rows"
SQL <<SQLEOF
CREATE DATABASE einvoice CHARACTER SET utf8mb4;
USE einvoice;
CREATE TABLE invoices (id BIGINT PRIMARY KEY, seller_tax_code CHAR(10), series VARCHAR(8), number INT,
  issued DATE, total DECIMAL(18,2), buyer VARCHAR(200), xml MEDIUMTEXT, KEY (seller_tax_code, series, number)) ENGINE=InnoDB;
INSERT INTO invoices SELECT seq, LPAD(seq MOD 9973, 10, '0'), CONCAT('C26T', CHAR(65 + seq MOD 26)), seq,
  DATE('2026-01-01') + INTERVAL (seq MOD 300) DAY, (seq * 7919 MOD 10000000) / 100,
  CONCAT('Công ty TNHH Hóa đơn điện tử số ', seq), CONCAT('<HDon><DLHDon><TTChung><SHDon>', seq, '</SHDon></TTChung>',
  REPEAT(MD5(seq), 20), '</DLHDon></HDon>') FROM seq_1_to_$ROWS;
CREATE TABLE payments (id BIGINT PRIMARY KEY, invoice BIGINT, amount DECIMAL(18,2)) ENGINE=InnoDB;
INSERT INTO payments SELECT seq, seq, seq MOD 1000 FROM seq_1_to_$ROWS;
SQLEOF
SQL -N -e "ANALYZE TABLE einvoice.invoices, einvoice.payments" >/dev/null
SIZE=$(SQL -N -e "SELECT ROUND(SUM(data_length+index_length)/1048576) FROM information_schema.tables WHERE table_schema='einvoice'")
URL="mysql://root@localhost/einvoice?socket=$M/sock"
declare -a MD EV_M
for i in $(seq 1 "$RUNS"); do
	t0=$(now)
	mariadb-dump --no-defaults -uroot --socket="$M/sock" --single-transaction --routines --events --triggers \
		--hex-blob --quick --skip-dump-date --default-character-set=utf8mb4 einvoice >"$WORK/dump.sql" || die "mariadb-dump failed"
	t1=$(now)
	MD+=("$(echo "$t1 - $t0" | bc)")
	DUMPSIZE=$(stat -c %s "$WORK/dump.sql")
	rm -f "$WORK/dump.sql"
	export EINVAULT_REPO=$WORK/repo-m$i
	"$EV" init -q
	t0=$(now)
	"$EV" backup -q --no-progress "$URL" >"$WORK/ev-m$i.log" 2>&1 || die "einvault backup failed: $(tail -1 "$WORK/ev-m$i.log")"
	t1=$(now)
	EV_M+=("$(echo "$t1 - $t0" | bc)")
	rm -rf "$EINVAULT_REPO"
	log "MariaDB run $i: mariadb-dump ${MD[-1]}s, einvault ${EV_M[-1]}s"
done
MD_MED=$(printf '%s\n' "${MD[@]}" | median)
EVM_MED=$(printf '%s\n' "${EV_M[@]}" | median)
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; PID=

# --- SQLite ----------------------------------------------------------------
SQ_LINE="| SQLite | - | sqlite3 not installed | - | - |"
if command -v sqlite3 >/dev/null; then
	DB=$WORK/einvoice.sqlite
	log "building a SQLite database of $ROWS rows"
	sqlite3 "$DB" <<SQLEOF
PRAGMA journal_mode=WAL;
CREATE TABLE invoices (id INTEGER PRIMARY KEY, seller_tax_code TEXT, number INTEGER, total REAL, xml TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < $ROWS)
INSERT INTO invoices SELECT i, printf('%010d', i % 9973), i, (i * 7919 % 10000000) / 100.0,
  '<HDon><SHDon>' || i || '</SHDon>' || hex(randomblob(300)) || '</HDon>' FROM c;
CREATE INDEX inv_seller ON invoices(seller_tax_code, number);
SQLEOF
	SQSIZE=$(( $(stat -c %s "$DB") / 1048576 ))
	declare -a SQ EV_S
	for i in $(seq 1 "$RUNS"); do
		t0=$(now)
		sqlite3 "$DB" ".backup '$WORK/copy.sqlite'"
		t1=$(now)
		SQ+=("$(echo "$t1 - $t0" | bc)")
		rm -f "$WORK/copy.sqlite"
		export EINVAULT_REPO=$WORK/repo-s$i
		"$EV" init -q
		t0=$(now)
		"$EV" backup -q --no-progress "sqlite:$DB" --temp-dir "$WORK" >"$WORK/ev-s$i.log" 2>&1 || die "einvault sqlite backup failed: $(tail -1 "$WORK/ev-s$i.log")"
		t1=$(now)
		EV_S+=("$(echo "$t1 - $t0" | bc)")
		rm -rf "$EINVAULT_REPO"
		log "SQLite run $i: sqlite3 .backup ${SQ[-1]}s, einvault ${EV_S[-1]}s"
	done
	SQ_MED=$(printf '%s\n' "${SQ[@]}" | median)
	EVS_MED=$(printf '%s\n' "${EV_S[@]}" | median)
	SQ_LINE="| SQLite ($SQSIZE MiB file) | $EVS_MED | $SQ_MED (sqlite3 .backup to a file) | $(ratio "$EVS_MED" "$SQ_MED") | ≤ 1.10 |"
fi

echo
echo "## Logical database backups, $(date -u +%Y-%m-%d), $ROWS rows, median of $RUNS"
echo
echo "| database | einvault s | plain tool s | ratio | target |"
echo "|---|---|---|---|---|"
echo "| MariaDB ($SIZE MiB in tables, $(( DUMPSIZE / 1048576 )) MiB dump) | $EVM_MED | $MD_MED (mariadb-dump > file) | $(ratio "$EVM_MED" "$MD_MED") | ≤ 1.10 |"
echo "$SQ_LINE"
echo
echo "einvault includes encryption, compression, chunking, the repository write, and (MariaDB) exact row counts plus CHECKSUM TABLE of every table read inside the dump's snapshot; (SQLite) row counts and the file SHA-256."
