package cli

import (
	"context"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/daemon"
)

// walProber lists wal/ of the repository and of each configured copy
// (no password needed: only names and file times are read).
type walProber struct{ g *Globals }

func (p walProber) NewestWAL(ctx context.Context, cfg *config.Config) []daemon.WALLocation {
	places := []struct{ name, loc string }{{"repository", cfg.Repository.Location}}
	for _, c := range cfg.Repository.Copies {
		places = append(places, struct{ name, loc string }{c.Name, c.Location})
	}
	out := make([]daemon.WALLocation, 0, len(places))
	for _, pl := range places {
		w := daemon.WALLocation{Name: pl.name, Location: pl.loc}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		be, err := location.Open(lctx, pl.loc, p.g.LocationOptions())
		if err == nil {
			w.Time, w.Newest, err = newestFile(lctx, be, backend.WALFile)
			be.Close()
		}
		cancel()
		if err != nil {
			w.Err = oneLine(err)
		}
		out = append(out, w)
	}
	return out
}
