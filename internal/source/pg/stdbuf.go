package pg

import (
	"os"
	"strconv"
	"strings"
)

// stdbufLibs are where coreutils installs libstdbuf.so, the library
// behind stdbuf(1).
var stdbufLibs = []string{"/usr/libexec/coreutils/libstdbuf.so", "/usr/lib/coreutils/libstdbuf.so", "/usr/local/libexec/coreutils/libstdbuf.so"}

// dumpStdoutBuffer is the stdio buffer pg_dump writes its stdout with.
const dumpStdoutBuffer = 1 << 20

// withLargeStdoutBuffer returns env with what stdbuf -o1M sets for the
// program: pg_dump --format=custom --compress=0 writes every table row as
// its own block through stdio, whose buffer for a pipe is 4 KiB — some
// 75,000 write(2) calls and as many reader wake-ups for 300 MiB, half of
// pg_dump's CPU time. A 1 MiB buffer makes that a few hundred. Without
// coreutils' libstdbuf (not Linux, or not installed) env is returned as
// it is. The lookup is injectable for tests.
func withLargeStdoutBuffer(env []string, exists func(string) bool) []string {
	if exists == nil {
		exists = func(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }
	}
	lib := ""
	for _, p := range stdbufLibs {
		if exists(p) {
			lib = p
			break
		}
	}
	if lib == "" {
		return env
	}
	out := make([]string, 0, len(env)+2)
	preload := lib
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "LD_PRELOAD="):
			if v := strings.TrimPrefix(kv, "LD_PRELOAD="); v != "" {
				preload = v + " " + lib
			}
		case strings.HasPrefix(kv, "_STDBUF_O="):
		default:
			out = append(out, kv)
		}
	}
	return append(out, "LD_PRELOAD="+preload, "_STDBUF_O="+strconv.Itoa(dumpStdoutBuffer))
}
