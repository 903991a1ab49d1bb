package pg

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/source"
)

// BaseOptions configure a physical base backup.
type BaseOptions struct {
	DSN    DSN
	BinDir string
	Logger *slog.Logger
}

// Extra keys of a base backup's source.Metadata.
const (
	ExtraStartLSN  = "start_lsn"
	ExtraStopLSN   = "stop_lsn"
	ExtraTimeline  = "timeline"
	ExtraLabelTime = "backup_label_time"
	ExtraStopTime  = "stop_time" // server clock right after the backup ended: the earliest recovery target time
	ExtraSystemID  = "system_identifier"
	ExtraKind      = "kind" // "basebackup"
	baseTarName    = "base.tar"
)

// BackupLabel is what backup_label says about a base backup.
type BackupLabel struct {
	StartLSN   LSN
	Checkpoint LSN
	Timeline   uint32
	StartTime  string // as PostgreSQL wrote it, e.g. "2026-11-23 12:00:00 UTC"
	Label      string
}

// ParseBackupLabel parses the backup_label file of a base backup.
func ParseBackupLabel(b []byte) (BackupLabel, error) {
	var l BackupLabel
	var haveStart, haveTLI bool
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "START WAL LOCATION":
			lsn, _, _ := strings.Cut(v, " ")
			x, err := ParseLSN(lsn)
			if err != nil {
				return l, fmt.Errorf("backup_label: %w", err)
			}
			l.StartLSN, haveStart = x, true
		case "CHECKPOINT LOCATION":
			x, err := ParseLSN(v)
			if err != nil {
				return l, fmt.Errorf("backup_label: %w", err)
			}
			l.Checkpoint = x
		case "START TIMELINE":
			x, err := strconv.ParseUint(v, 10, 32)
			if err != nil || x == 0 {
				return l, fmt.Errorf("backup_label: bad START TIMELINE %q", v)
			}
			l.Timeline, haveTLI = uint32(x), true
		case "START TIME":
			l.StartTime = v
		case "LABEL":
			l.Label = v
		}
	}
	if !haveStart || !haveTLI {
		return l, fmt.Errorf("backup_label lacks START WAL LOCATION or START TIMELINE")
	}
	return l, nil
}

// BaseBackupStreams returns the producer of a physical base backup:
// pg_basebackup -D - -Ft -X none streamed into the repository as
// base.tar, chunked and deduplicated like everything else (a second base
// backup of an unchanged cluster adds almost nothing). WAL is not
// included: it comes from the archive (wal-push), which must be on.
func BaseBackupStreams(o BaseOptions) archiver.StreamFunc {
	return func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		prog, err := FindProgram(o.BinDir, "pg_basebackup")
		if err != nil {
			return nil, err
		}
		conn, err := Connect(ctx, o.DSN)
		if err != nil {
			return nil, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		meta := &source.Metadata{Engine: "postgresql", Location: o.DSN.URI, Extra: map[string]string{ExtraKind: "basebackup"}}
		var archiveMode, archiveCmd, sysID string
		err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('archive_mode'), current_setting('archive_command'),
			(SELECT system_identifier::text FROM pg_control_system()),
			(SELECT sum(pg_database_size(oid)) FROM pg_database)::bigint`).Scan(&meta.ServerVersion, &archiveMode, &archiveCmd, &sysID, &meta.SizeBytes)
		if err != nil {
			return nil, fmt.Errorf("query server settings: %v", oneLine(err))
		}
		if archiveMode == "off" || strings.TrimSpace(archiveCmd) == "" {
			return nil, fmt.Errorf("WAL archiving is off on %s: a base backup without archived WAL cannot be recovered; set archive_mode = on and archive_command = 'einvault ... wal-push %%p' (see docs/DATABASES.md)", o.DSN.URI)
		}
		meta.Extra[ExtraSystemID] = sysID

		cmd := exec.CommandContext(ctx, prog, "-D", "-", "-F", "t", "-X", "none", "--checkpoint=fast", "--no-manifest",
			"--label=einvault", "--dbname="+o.DSN.URI)
		cmd.Env = o.DSN.Env()
		var stderr tailBuffer
		cmd.Stderr = &stderr
		out, err := source.StdoutPipe(cmd)
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start pg_basebackup: %w", err)
		}
		// Read backup_label from the tar stream as it passes.
		pr, pw := io.Pipe()
		labelc := make(chan []byte, 1)
		go func() {
			var label []byte
			tr := tar.NewReader(pr)
			for {
				h, err := tr.Next()
				if err != nil {
					break
				}
				if h.Name == "backup_label" && label == nil {
					label, _ = io.ReadAll(io.LimitReader(tr, 64<<10))
				}
			}
			_, _ = io.Copy(io.Discard, pr)
			labelc <- label
		}()
		cr := &countingReader{r: io.TeeReader(out, pw)}
		emitErr := emit(baseTarName, cr)
		pw.Close()
		if emitErr != nil {
			_ = cmd.Process.Kill()
		}
		waitErr := cmd.Wait()
		label := <-labelc
		switch {
		case emitErr != nil:
			return nil, emitErr
		case waitErr != nil:
			return nil, progError("pg_basebackup of "+o.DSN.URI, waitErr, stderr.String())
		}
		// pg_basebackup -D - does not print its end point. The server's
		// insert position right after the backup is an upper bound of it:
		// recovery is consistent from there on, and the window starts there.
		var stopTime time.Time
		var stopText string
		if err := conn.QueryRow(ctx, "SELECT now(), pg_current_wal_lsn()::text").Scan(&stopTime, &stopText); err != nil {
			return nil, fmt.Errorf("read the server's position after the base backup: %v", oneLine(err))
		}
		bl, err := ParseBackupLabel(label)
		if err != nil {
			return nil, fmt.Errorf("base backup stream: %w", err)
		}
		stop, err := ParseLSN(stopText)
		if err != nil {
			return nil, err
		}
		meta.Extra[ExtraStartLSN] = bl.StartLSN.String()
		meta.Extra[ExtraStopLSN] = stop.String()
		meta.Extra[ExtraTimeline] = strconv.FormatUint(uint64(bl.Timeline), 10)
		meta.Extra[ExtraLabelTime] = bl.StartTime
		meta.Extra[ExtraStopTime] = stopTime.UTC().Format(time.RFC3339Nano)
		meta.Streams = []source.Stream{{Name: baseTarName, Format: FormatBaseTar, Bytes: cr.n}}
		return meta.Encode()
	}
}
