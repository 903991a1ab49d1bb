package archiver

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Excluder decides which paths a backup skips. Patterns use
// filepath.Match syntax plus "**" for any number of directories; a
// pattern without a slash matches any path element (like restic and
// gitignore), one with a slash matches the whole absolute path or a
// prefix of it.
type Excluder struct {
	patterns []string
}

// NewExcluder validates patterns.
func NewExcluder(patterns []string) (*Excluder, error) {
	e := &Excluder{}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if _, err := filepath.Match(strings.ReplaceAll(p, "**", "*"), "x"); err != nil {
			return nil, fmt.Errorf("bad exclude pattern %q: %w", p, err)
		}
		e.patterns = append(e.patterns, p)
	}
	return e, nil
}

// ReadExcludeFile reads one pattern per line ("#" starts a comment).
func ReadExcludeFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read exclude file: %w", err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out, s.Err()
}

// Patterns returns the effective patterns.
func (e *Excluder) Patterns() []string { return e.patterns }

// Excluded reports whether the absolute path p is excluded.
func (e *Excluder) Excluded(p string) bool {
	if e == nil {
		return false
	}
	base := filepath.Base(p)
	for _, pat := range e.patterns {
		if !strings.Contains(pat, "/") {
			if ok, _ := filepath.Match(pat, base); ok {
				return true
			}
			continue
		}
		if matchPath(pat, p) {
			return true
		}
	}
	return false
}

// matchPath matches a slash pattern against p or any of its parents,
// with "**" standing for zero or more elements.
func matchPath(pat, p string) bool {
	pe := strings.Split(strings.Trim(pat, "/"), "/")
	xe := strings.Split(strings.Trim(p, "/"), "/")
	if !strings.HasPrefix(pat, "/") {
		// relative pattern: may match at any depth
		for i := range xe {
			if matchElems(pe, xe[i:]) {
				return true
			}
		}
		return false
	}
	return matchElems(pe, xe)
}

// matchElems reports whether the pattern elements match a prefix of xs.
func matchElems(pe, xs []string) bool {
	if len(pe) == 0 {
		return true
	}
	if pe[0] == "**" {
		for i := 0; i <= len(xs); i++ {
			if matchElems(pe[1:], xs[i:]) {
				return true
			}
		}
		return false
	}
	if len(xs) == 0 {
		return false
	}
	if ok, _ := filepath.Match(pe[0], xs[0]); !ok {
		return false
	}
	return matchElems(pe[1:], xs[1:])
}
