package pg

import (
	"slices"
	"testing"
)

func TestWithLargeStdoutBuffer(t *testing.T) {
	lib := stdbufLibs[0]
	has := func(p string) bool { return p == lib }
	none := func(string) bool { return false }
	for _, tc := range []struct {
		name   string
		env    []string
		exists func(string) bool
		want   []string
	}{
		{"no libstdbuf", []string{"PATH=/bin"}, none, []string{"PATH=/bin"}},
		{"added", []string{"PATH=/bin"}, has, []string{"PATH=/bin", "LD_PRELOAD=" + lib, "_STDBUF_O=1048576"}},
		{"existing preload kept first", []string{"LD_PRELOAD=/x.so", "PATH=/bin"}, has, []string{"PATH=/bin", "LD_PRELOAD=/x.so " + lib, "_STDBUF_O=1048576"}},
		{"empty preload", []string{"LD_PRELOAD="}, has, []string{"LD_PRELOAD=" + lib, "_STDBUF_O=1048576"}},
		{"own setting replaced", []string{"_STDBUF_O=L"}, has, []string{"LD_PRELOAD=" + lib, "_STDBUF_O=1048576"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := withLargeStdoutBuffer(tc.env, tc.exists); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
