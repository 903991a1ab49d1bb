package mysql

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestMarkerReader(t *testing.T) {
	body := strings.Repeat("INSERT INTO `t` VALUES (1,'x'),(2,'y');\n", 5000)
	for _, tc := range []struct {
		name     string
		dump     string
		found    bool
		complete bool
	}{
		{"complete", "-- MariaDB dump\n\n-- Table structure for table `t`\n" + body + "\n-- Dump completed on 2026-11-23\n", true, true},
		{"cut short", "-- MariaDB dump\n\n-- Table structure for table `t`\n" + body, true, false},
		{"no tables", "-- MariaDB dump\n\n-- Dump completed on 2026-11-23\n", true, true},
		{"completion marker inside data", "-- MariaDB dump\n\n-- Table structure for table `t`\n\n-- Dump completed" + body, true, false},
	} {
		for _, wrap := range []struct {
			name string
			f    func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"one byte", iotest.OneByteReader}, {"half", iotest.HalfReader}} {
			t.Run(tc.name+"/"+wrap.name, func(t *testing.T) {
				found := false
				m := &markerReader{r: wrap.f(strings.NewReader(tc.dump)), found: func() { found = true }}
				got, err := io.ReadAll(m)
				if err != nil || string(got) != tc.dump {
					t.Fatalf("read %d of %d bytes: %v", len(got), len(tc.dump), err)
				}
				if found != tc.found || m.complete() != tc.complete {
					t.Fatalf("found %v complete %v, want %v %v", found, m.complete(), tc.found, tc.complete)
				}
			})
		}
	}
}
