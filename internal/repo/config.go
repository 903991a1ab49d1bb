package repo

import (
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is the repository format this code writes and reads.
const FormatVersion = 1

// ChunkerParams choose content-defined chunk sizes for a repository.
type ChunkerParams struct {
	Algorithm string `json:"algorithm"`
	Min       int    `json:"min"`
	Avg       int    `json:"avg"`
	Max       int    `json:"max"`
}

// DefaultChunker is FastCDC around 1 MiB.
var DefaultChunker = ChunkerParams{Algorithm: "fastcdc-v1.0.0", Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20}

// Config is the plaintext "config" file: nothing secret.
type Config struct {
	Version int           `json:"version"`
	ID      ID            `json:"id"`
	Created time.Time     `json:"created"`
	Chunker ChunkerParams `json:"chunker"`
	// PackSize is the target pack size in bytes.
	PackSize int `json:"pack_size"`
	// SmallFile is the size up to which a file is stored as one blob.
	SmallFile int `json:"small_file"`
}

// Validate checks the meaning of a decoded config.
func (c Config) Validate() error {
	if c.Version != FormatVersion {
		return fmt.Errorf("repository format version %d is not supported by this einvault (supports %d): upgrade einvault", c.Version, FormatVersion)
	}
	if c.ID.IsNull() {
		return fmt.Errorf("config has no repository ID")
	}
	ch := c.Chunker
	if ch.Algorithm != "fastcdc-v1.0.0" || ch.Min < 64 || ch.Avg <= ch.Min || ch.Max <= ch.Avg || ch.Max > 64<<20 || ch.Avg&(ch.Avg-1) != 0 {
		return fmt.Errorf("config has invalid chunker parameters %+v", ch)
	}
	if c.PackSize < 1<<20 || c.PackSize > 512<<20 {
		return fmt.Errorf("config has invalid pack size %d", c.PackSize)
	}
	if c.SmallFile < 0 || c.SmallFile > ch.Max {
		return fmt.Errorf("config has invalid small-file limit %d", c.SmallFile)
	}
	return nil
}

// DecodeConfig parses and validates a config file.
func DecodeConfig(data []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%w: config file: %v", ErrDamaged, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	return c, nil
}
