// Command testsummary reads `go test -json` on stdin, prints the usual
// human-readable output (the Output lines), and writes a closing line
// "tests: N passed, N failed, N skipped" to $TEST_JSON.summary and to
// stdout. It exits non-zero when any test or package failed, or when no
// test ran at all.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	var passed, failed, skipped, pkgFailed int
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Println(sc.Text()) // build errors arrive as plain text
			continue
		}
		switch {
		case e.Action == "output":
			fmt.Print(e.Output)
		case e.Test != "" && e.Action == "pass":
			passed++
		case e.Test != "" && e.Action == "fail":
			failed++
		case e.Test != "" && e.Action == "skip":
			skipped++
		case e.Test == "" && e.Action == "fail":
			pkgFailed++
		}
	}
	line := fmt.Sprintf("tests: %d passed, %d failed, %d skipped", passed, failed+pkgFailed, skipped)
	fmt.Println(line)
	if f := os.Getenv("TEST_JSON"); f != "" {
		_ = os.WriteFile(f+".summary", []byte(line+"\n"), 0o644)
	}
	if failed+pkgFailed > 0 || passed == 0 {
		os.Exit(1)
	}
}
