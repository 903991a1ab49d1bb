#!/usr/bin/env bash
# quickstart.sh: install einvault and run a first backup and restore of a
# generated sample of e-invoices into a local repository. No server, no
# questions: the password is generated into a file.
#
#   ./scripts/quickstart.sh            # 2000 invoices into a new temp dir
#   QUICKSTART_FILES=20000 QUICKSTART_DIR=/srv/try ./scripts/quickstart.sh
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
if ! command -v go >/dev/null; then
	echo "quickstart: Go is needed (1.26 or later): https://go.dev/dl/ (install into /usr/local/go)" >&2
	exit 1
fi

FILES=${QUICKSTART_FILES:-2000}
DIR=${QUICKSTART_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/einvault-quickstart.XXXXXX")}
mkdir -p "$DIR"

echo "==> installing einvault and einvault-wal (go install ./cmd/einvault ./cmd/einvault-wal)"
GOFLAGS=${GOFLAGS:--buildvcs=false} go install ./cmd/einvault ./cmd/einvault-wal
BIN=$(go env GOBIN)
[[ -n $BIN ]] || BIN=$(go env GOPATH)/bin
EINVAULT=$BIN/einvault
"$EINVAULT" version

# Everything below is an ordinary einvault session.
export EINVAULT_REPO=$DIR/repo
export EINVAULT_PASSWORD_FILE=$DIR/password
unset EINVAULT_PASSWORD
umask 077
head -c 24 /dev/urandom | base64 >"$EINVAULT_PASSWORD_FILE"
umask 022

echo "==> generating $FILES sample e-invoices (Circular 78 XML, PDF renderings, a database dump)"
"$EINVAULT" corpus generate "$DIR/invoices" --files "$FILES"

echo "==> einvault init"
"$EINVAULT" init

echo "==> einvault backup"
"$EINVAULT" backup "$DIR/invoices" --tag invoices

echo "==> a day of business, then an incremental backup"
"$EINVAULT" corpus mutate "$DIR/invoices" --seed 2
"$EINVAULT" backup "$DIR/invoices" --tag invoices
"$EINVAULT" snapshots

echo "==> einvault check --read-data"
"$EINVAULT" check --read-data

echo "==> einvault restore latest --verify"
"$EINVAULT" restore latest --target "$DIR/restored" --verify

echo "==> comparing the restored files with the originals"
diff -r "$DIR/invoices" "$DIR/restored$DIR/invoices"
echo "identical: $(find "$DIR/invoices" -type f | wc -l) files"

cat <<MSG

Done. Everything is in $DIR:
  invoices/   the sample corpus that was backed up
  repo/       the encrypted repository
  password    its password (keep it, or the repository cannot be opened)
  restored/   the restored copy

Try it yourself:
  export EINVAULT_REPO=$EINVAULT_REPO EINVAULT_PASSWORD_FILE=$EINVAULT_PASSWORD_FILE
  $EINVAULT snapshots
  $EINVAULT find '*_00000001.xml'
  $EINVAULT stats
Remove it all with: rm -rf $DIR
MSG
