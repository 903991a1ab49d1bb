//go:build !linux

package walarchive

func reserve(size int) ([]byte, func()) {
	if size <= 0 {
		return nil, nil
	}
	return make([]byte, size), nil
}
