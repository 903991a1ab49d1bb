package mem_test

import (
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/backendtest"
	"github.com/einvault/einvault/internal/backend/mem"
)

func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, func(t *testing.T) backend.Backend { return mem.New() })
}

func TestLocationUnique(t *testing.T) {
	if a, b := mem.New().Location(), mem.New().Location(); a == b {
		t.Errorf("two backends share location %q", a)
	}
}
