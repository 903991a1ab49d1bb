// Package e2e holds end-to-end tests of the einvault binary: it is built
// once, then run as a subprocess against real repositories on the local
// disk, the way an administrator or a cron job runs it. The tests kill it
// at random moments (crash safety), damage repository files (corruption
// detection and partial restore), run several processes against one
// repository (concurrency and locks), and check exit codes, messages,
// JSON output and help texts (command-line behaviour).
//
// The package has no non-test code besides this comment.
package e2e
