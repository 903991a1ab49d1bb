package walcli

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSmallDependencies keeps einvault-wal small: PostgreSQL starts it
// once per WAL segment, and every package's initialisation is paid on
// each call. The command framework, the databases' drivers, the chunker
// and the rest of einvault's subsystems must stay out.
func TestSmallDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/einvault/einvault/cmd/einvault-wal").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/spf13/cobra", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/go-sql-driver",
		"github.com/microsoft/go-mssqldb", "github.com/PlakarKorp/go-cdc-chunkers", "encoding/gob",
		"github.com/einvault/einvault/internal/cli", "github.com/einvault/einvault/internal/source",
		"github.com/einvault/einvault/internal/archiver", "github.com/einvault/einvault/internal/catalog",
		// Remote storage is handed to the full einvault (handOff).
		"github.com/einvault/einvault/internal/backend/location", "github.com/minio/minio-go", "github.com/pkg/sftp",
		"golang.org/x/crypto/ssh", "net/http",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("einvault-wal depends on %s: keep it out (process start is paid per WAL segment)", dep)
			}
		}
	}
}
