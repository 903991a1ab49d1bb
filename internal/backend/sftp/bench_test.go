package sftp_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/sftp"
	"github.com/einvault/einvault/internal/testsvc"
)

// sshdCPU returns the CPU seconds (user+sys) of every sshd process and
// the sftp servers they run.
func sshdCPU() float64 {
	var total float64
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !(strings.Contains(s[:i], "(sshd") || strings.Contains(s[:i], "(sftp-server")) {
			continue
		}
		f := strings.Fields(s[i+2:])
		u, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (u + st) / 100
	}
	return total
}

// BenchmarkSave uploads 16 MiB packs, four at a time as a backup does,
// with both request sizes; it reports the server's CPU per GiB.
func BenchmarkSave(b *testing.B) {
	srv := testsvc.StartSSHD(b)
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(rand.N(256))
	}
	for _, c := range []struct{ packet, requests int }{
		{sftp.DefaultPacketSize, 16},
		{sftp.OpenSSHPacketSize, 16},
		{sftp.OpenSSHPacketSize, 4},
	} {
		b.Run(fmt.Sprintf("packet=%dK/requests=%d", c.packet>>10, c.requests), func(b *testing.B) {
			cfg := config(b, srv)
			cfg.PacketSize = c.packet
			cfg.RequestsPerFile = c.requests
			be, err := sftp.Create(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			b.SetBytes(int64(len(data)))
			cpu0 := sshdCPU()
			b.ResetTimer()
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4)
			for i := 0; b.Loop(); i++ {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					h := backend.Handle{Type: backend.PackFile, Name: fmt.Sprintf("%064x", i)}
					if err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric((sshdCPU()-cpu0)/(float64(b.N)*16/1024), "server-cpu-s/GiB")
		})
	}
}

// BenchmarkSaveOne uploads one file at a time (a copy's last packs,
// catalogs): latency per file for each request size and depth.
func BenchmarkSaveOne(b *testing.B) {
	srv := testsvc.StartSSHD(b)
	for _, size := range []int{1 << 20, 3 << 20, 16 << 20} {
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		for _, ps := range []int{sftp.DefaultPacketSize, sftp.OpenSSHPacketSize} {
			for _, rq := range []int{4, 16} {
				b.Run(fmt.Sprintf("size=%dM/packet=%dK/req=%d", size>>20, ps>>10, rq), func(b *testing.B) {
					cfg := config(b, srv)
					cfg.PacketSize = ps
					cfg.RequestsPerFile = rq
					be, err := sftp.Create(context.Background(), cfg)
					if err != nil {
						b.Fatal(err)
					}
					defer be.Close()
					b.SetBytes(int64(len(data)))
					for i := 0; b.Loop(); i++ {
						h := backend.Handle{Type: backend.PackFile, Name: fmt.Sprintf("%064x", i)}
						if err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
