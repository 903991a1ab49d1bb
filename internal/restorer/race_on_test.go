//go:build race

package restorer

const raceEnabled = true
