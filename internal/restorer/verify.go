package restorer

import (
	"bufio"
	"fmt"
	"io"
	"sync"

	"github.com/einvault/einvault/internal/repo"
)

// verify re-reads every restored file and compares each piece with the
// hash of the blob plaintext that was written there.
func (rs *run) verify() {
	idx := rs.r.repo.Index()
	jobs := make(chan int32, 64)
	var wg sync.WaitGroup
	for i := 0; i < rs.r.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			br := bufio.NewReaderSize(nil, 256<<10)
			for fi := range jobs {
				err := rs.verifyFile(idx, fi, br, &buf)
				if err != nil {
					rs.mu.Lock()
					rs.report.VerifyFailed = append(rs.report.VerifyFailed, PathReason{Path: rs.filePath(fi), Reason: err.Error()})
					rs.mu.Unlock()
				} else {
					rs.mu.Lock()
					rs.report.Verified++
					rs.mu.Unlock()
				}
			}
		}()
	}
	for i, f := range rs.files {
		if f.linkTo < 0 && f.flags.Load()&fDone != 0 {
			jobs <- int32(i)
		}
	}
	close(jobs)
	wg.Wait()
}

func (rs *run) verifyFile(idx *repo.Index, fi int32, br *bufio.Reader, buf *[]byte) error {
	f := rs.files[fi]
	root, err := rs.cache.get(f.dir)
	if err != nil {
		return err
	}
	defer rs.cache.release(f.dir)
	fh, err := root.Open(f.name)
	if err != nil {
		return err
	}
	defer fh.Close()
	br.Reset(fh)
	var off int64
	for _, id := range f.content {
		e, ok := idx.Lookup(id)
		if !ok {
			return fmt.Errorf("blob %s: %w", id.Short(), repo.ErrBlobMissing)
		}
		if cap(*buf) < int(e.RawLength) {
			*buf = make([]byte, e.RawLength)
		}
		b := (*buf)[:e.RawLength]
		if _, err := io.ReadFull(br, b); err != nil {
			return fmt.Errorf("read at offset %d: %w (file is shorter than in the snapshot)", off, err)
		}
		rs.mu.Lock()
		want, ok := rs.hashes[id]
		rs.mu.Unlock()
		if !ok || repo.Hash(b) != want {
			return fmt.Errorf("bytes %d-%d differ from blob %s", off, off+int64(len(b)), id.Short())
		}
		off += int64(len(b))
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("file is longer than in the snapshot (%d bytes)", off)
	}
	return nil
}
