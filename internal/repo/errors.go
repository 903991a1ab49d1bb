package repo

import "errors"

// ErrLocked is returned when an exclusive operation (prune) finds another
// one running. Backups are never refused because of a lock.
var ErrLocked = errors.New("repository is locked by another exclusive operation")
