package repo

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// TestUseFastCompression: blobs saved at the fastest level are stored
// compressed and read back by a repository opened anew (default level).
func TestUseFastCompression(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t)
	if err := r.UseFastCompression(); err != nil {
		t.Fatal(err)
	}
	var data []byte
	for i := 0; len(data) < 256<<10; i++ {
		data = fmt.Appendf(data, "INSERT INTO invoices VALUES (%d, 'customer %d', %d.00);\n", i, i%97, i%1000)
	}
	id := saveData(t, r, data)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.StoredBytes*4 > st.RawBytes {
		t.Fatalf("stored %d of %d bytes: not compressed", st.StoredBytes, st.RawBytes)
	}
	r2, err := Open(ctx, be, []byte("pw"), Options{KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r2.LoadBlob(ctx, DataBlob, id, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v (equal %v)", err, bytes.Equal(got, data))
	}
}
