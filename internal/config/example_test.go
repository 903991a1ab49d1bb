package config

import (
	"path/filepath"
	"testing"
)

func TestExampleValidates(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "einvault.example.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Classes["invoices"].Effective().String(); got != "10y" {
		t.Errorf("invoices effective retention %s, want 10y", got)
	}
	if len(c.Jobs) != 8 {
		t.Errorf("%d jobs", len(c.Jobs))
	}
}
