package location

import (
	"context"
	"errors"
	"testing"
)

func TestSSHUsageErrors(t *testing.T) {
	for _, loc := range []string{"sftp:host-without-path", "sftp:u@h:/r?nope=1", "sftp://h", "rclone:", "rclone:no-colon"} {
		for _, create := range []bool{false, true} {
			_, err := open(context.Background(), loc, Options{}, create)
			if !errors.Is(err, ErrUsage) {
				t.Errorf("%q (create %v): %v, want ErrUsage", loc, create, err)
			}
		}
	}
}
