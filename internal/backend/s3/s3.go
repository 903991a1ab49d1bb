// Package s3 owns the backend for a repository in an S3-compatible object
// store (AWS S3, MinIO, Ceph RGW, Wasabi, ...), through minio-go.
//
// Location: "s3:http[s]://host[:port]/bucket[/prefix]" with non-secret
// options as URL query parameters:
//
//	region=NAME          bucket region (else AWS_DEFAULT_REGION, else asked from the server)
//	object-lock=PERIOD   write files with a retention period (90d, 12w, 7y, 36h)
//	lock-mode=MODE       governance (default) or compliance
//	quota=SIZE           space the bucket may use (500GiB), for free-space checks
//	connections=N        concurrent operations (default: unlimited, 4 uploads)
//	multipart-threshold=SIZE  larger files are uploaded in parts (default 64MiB)
//	part-size=SIZE       multipart part size (default 16MiB, at least 5MiB)
//
// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN; a private CA from EINVAULT_S3_CA_FILE or
// AWS_CA_BUNDLE.
//
// Keys mirror the local layout under the prefix: config, keys/<name>,
// data/<first two characters>/<name>, index/<name>, and so on. A PUT is
// atomic, so Save needs no temporary names. Files up to the multipart
// threshold (every pack of the default size) go in one PUT streamed from
// the source; larger ones are uploaded in parts, several in parallel, and
// an interrupted multipart upload is aborted and never becomes visible.
//
// Object lock: with object-lock set (the bucket must have object lock
// enabled; init creates it so), every file except locks/ and pending/ is
// written with a retain-until date of now plus the period. Remove deletes
// every version of a key, not just the current one, so removing a file
// whose retention has not ended fails with an error matching
// backend.ErrProtected instead of hiding it behind a delete marker.
package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/einvault/einvault/internal/backend"
)

// ErrAlreadyExists is matched by Create when the location holds a
// repository.
var ErrAlreadyExists = errors.New("repository already exists")

// Backend stores a repository in an S3 bucket. It is safe for concurrent
// use.
type Backend struct {
	cfg       Config
	client    *minio.Client
	transport *http.Transport
	prefix    string // "" or "prefix/"
	versioned bool
	now       func() time.Time
}

var (
	_ backend.Backend       = (*Backend)(nil)
	_ backend.SpaceReporter = (*Backend)(nil)
)

// Open opens the repository at cfg; a missing bucket or config file
// matches backend.ErrNotExist.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	ok, err := b.client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		b.Close()
		return nil, b.classify("open repository", backend.Handle{}, err)
	}
	if !ok {
		b.Close()
		return nil, fmt.Errorf("repository not found at %s: bucket %q does not exist (run 'einvault init' to create it): %w", cfg, cfg.Bucket, backend.ErrNotExist)
	}
	if _, err := b.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); err != nil {
		b.Close()
		if errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("repository not found at %s: no config file (run 'einvault init' first): %w", cfg, backend.ErrNotExist)
		}
		return nil, err
	}
	if err := b.probeBucket(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Create prepares cfg for a new repository, creating the bucket (with
// object lock when cfg.ObjectLock is set) if it does not exist. It fails
// with ErrAlreadyExists when a config file is there.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Backend, error) {
		b.Close()
		return nil, err
	}
	ok, err := b.client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return fail(b.classify("create repository", backend.Handle{}, err))
	}
	if !ok {
		err := b.client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region, ObjectLocking: cfg.ObjectLock > 0})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return fail(b.classify(fmt.Sprintf("create bucket %q", cfg.Bucket), backend.Handle{}, err))
		}
	}
	switch _, err := b.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); {
	case err == nil:
		return fail(fmt.Errorf("create repository at %s: %w (a config file is there; open it instead, or choose another bucket or prefix)", cfg, ErrAlreadyExists))
	case !errors.Is(err, backend.ErrNotExist):
		return fail(err)
	}
	if err := b.probeBucket(ctx); err != nil {
		return fail(err)
	}
	return b, nil
}

func newBackend(cfg Config) (*Backend, error) {
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, fmt.Errorf("%s: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", cfg)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.MultipartThreshold == 0 {
		cfg.MultipartThreshold = DefaultMultipartThreshold
	}
	if cfg.LockMode == "" {
		cfg.LockMode = ModeGovernance
	}
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:    cfg.Secure,
		Transport: tr,
		Region:    cfg.Region,
		// Path-style requests work with every S3 implementation and with
		// bucket names containing dots.
		BucketLookup: minio.BucketLookupPath,
		// Retries live in the retry decorator (internal/backend/retry),
		// which sees the errors this package marks transient.
		MaxRetries: 1,
	})
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	b := &Backend{cfg: cfg, client: client, transport: tr, now: cfg.Now}
	if b.now == nil {
		b.now = time.Now
	}
	if cfg.Prefix != "" {
		b.prefix = cfg.Prefix + "/"
	}
	return b, nil
}

// newTransport builds an HTTP transport whose connection pool is large
// enough for parallel uploads, trusting cfg.CAFile besides the system
// roots.
func newTransport(cfg Config) (*http.Transport, error) {
	idle := 4 * max(cfg.Connections, 8)
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          idle,
		MaxIdleConnsPerHost:   idle,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 10 * time.Second,
		// Objects are opaque; never let the transport decode them.
		DisableCompression: true,
	}
	if cfg.Secure {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%s: read CA bundle: %w (check EINVAULT_S3_CA_FILE or AWS_CA_BUNDLE)", cfg, err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: CA bundle %s holds no PEM certificate (check EINVAULT_S3_CA_FILE or AWS_CA_BUNDLE)", cfg, cfg.CAFile)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
	}
	return tr, nil
}

// probeBucket learns whether the bucket keeps versions and checks that
// object lock is enabled when the location asks for retention.
func (b *Backend) probeBucket(ctx context.Context) error {
	vc, err := b.client.GetBucketVersioning(ctx, b.cfg.Bucket)
	if err != nil {
		return b.classify("read bucket versioning", backend.Handle{}, err)
	}
	// A suspended bucket still holds old versions: treat it as versioned
	// so that Remove deletes them too.
	b.versioned = vc.Status != ""
	if b.cfg.ObjectLock == 0 {
		return nil
	}
	enabled, _, _, _, err := b.client.GetObjectLockConfig(ctx, b.cfg.Bucket)
	if err != nil && minio.ToErrorResponse(err).Code != "ObjectLockConfigurationNotFoundError" {
		return b.classify("read bucket object lock configuration", backend.Handle{}, err)
	}
	if enabled != "Enabled" {
		return fmt.Errorf("%s: object-lock is set but bucket %q has no object lock enabled: create the bucket with object lock (einvault init does when the bucket is new) or drop the object-lock option", b.cfg, b.cfg.Bucket)
	}
	return nil
}

// Location returns the location without secrets.
func (b *Backend) Location() string { return b.cfg.String() }

// Close releases idle connections.
func (b *Backend) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

func (b *Backend) dir(t backend.FileType) string {
	return b.prefix + string(t) + "/"
}

func (b *Backend) key(h backend.Handle) string {
	if h.Type == backend.ConfigFile {
		return b.prefix + "config"
	}
	if h.Type == backend.PackFile && len(h.Name) >= 2 {
		return b.dir(h.Type) + h.Name[:2] + "/" + h.Name
	}
	return b.dir(h.Type) + h.Name
}

// check validates h: a known type and a valid name.
func check(h backend.Handle) error {
	if err := checkType(h.Type); err != nil {
		return err
	}
	return h.Valid()
}

func checkType(t backend.FileType) error {
	if !slices.Contains(backend.AllFileTypes, t) {
		return fmt.Errorf("invalid file type %q: want one of %v", t, backend.AllFileTypes)
	}
	return nil
}

// locked reports whether files of type t get a retention date.
func (b *Backend) locked(t backend.FileType) bool {
	return b.cfg.ObjectLock > 0 && t != backend.LockFile && t != backend.PendingFile
}

// errSizeMismatch is returned when the source does not hold size bytes.
var errSizeMismatch = errors.New("size mismatch")

// exactReader passes on exactly n bytes and fails when the source has
// fewer or more, so that a wrong size aborts the upload.
type exactReader struct {
	r   io.Reader
	n   int64 // bytes still expected
	err error // the first error of the source or of the size check
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.n == 0 {
		var one [1]byte
		k, err := io.ReadFull(e.r, one[:])
		switch {
		case k > 0:
			e.err = fmt.Errorf("%w: the source holds more bytes than announced", errSizeMismatch)
			return 0, e.err
		case err != nil && err != io.EOF && err != io.ErrUnexpectedEOF:
			e.err = err
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	k, err := e.r.Read(p)
	e.n -= int64(k)
	switch {
	case err == io.EOF && e.n > 0:
		e.err = fmt.Errorf("%w: the source ended %d bytes early", errSizeMismatch, e.n)
		return k, e.err
	case err == io.EOF:
		err = nil
	case err != nil:
		e.err = err
	}
	return k, err
}

// source returns a reader for exactly size bytes of rd. A seekable
// io.ReaderAt (a file, a bytes.Reader) is checked up front and passed as
// an io.ReaderAt so that multipart uploads send parts in parallel.
func source(rd io.Reader, size int64) (io.Reader, *exactReader, error) {
	if ra, ok := rd.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		cur, err1 := ra.Seek(0, io.SeekCurrent)
		end, err2 := ra.Seek(0, io.SeekEnd)
		if err1 == nil && err2 == nil {
			if _, err := ra.Seek(cur, io.SeekStart); err != nil {
				return nil, nil, err
			}
			if end-cur != size {
				return nil, nil, fmt.Errorf("%w: the source holds %d bytes, %d announced", errSizeMismatch, end-cur, size)
			}
			return io.NewSectionReader(ra, cur, size), nil, nil
		}
	}
	e := &exactReader{r: rd, n: size}
	return e, e, nil
}

// Save uploads rd as h. S3 makes the object visible only when the whole
// upload succeeded.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) error {
	if err := check(h); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("save %v: negative size %d", h, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	src, exact, err := source(rd, size)
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(b.cfg.PartSize),
		// One PUT up to the threshold: minio-go streams it from the source.
		DisableMultipart: size <= b.cfg.MultipartThreshold,
		// No SHA-256 payload signing (over plain HTTP minio-go would
		// sign every 64 KiB chunk and the server verify each one; both
		// cost CPU on the backup host): the body carries a CRC32C
		// trailer against corruption, and every file is authenticated
		// (AES-GCM) and named by its BLAKE3 hash, so tampering is found
		// on read all the same.
		DisableContentSha256: true,
	}
	if b.locked(h.Type) {
		opts.Mode = minio.RetentionMode(b.cfg.LockMode)
		opts.RetainUntilDate = b.now().Add(b.cfg.ObjectLock).UTC()
		// S3 demands an integrity header on writes with retention.
		opts.SendContentMd5 = true
	}
	_, err = b.client.PutObject(ctx, b.cfg.Bucket, b.key(h), src, size, opts)
	if exact != nil && exact.err != nil {
		// The source failed or had the wrong size: a permanent error of
		// the caller's data, not of the store.
		return fmt.Errorf("save %v: %w", h, exact.err)
	}
	if err != nil {
		return b.classify("save", h, err)
	}
	return nil
}

// Load returns length bytes of h from offset (0 = to the end).
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := check(h); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %v: negative offset or length", h)
	}
	var opts minio.GetObjectOptions
	switch {
	case length > 0:
		if err := opts.SetRange(offset, offset+length-1); err != nil {
			return nil, fmt.Errorf("load %v: %w", h, err)
		}
	case offset > 0:
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, fmt.Errorf("load %v: %w", h, err)
		}
	}
	core := minio.Core{Client: b.client}
	body, _, _, err := core.GetObject(ctx, b.cfg.Bucket, b.key(h), opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			// Offset at or past the end: the contract says "fewer bytes".
			if _, serr := b.Stat(ctx, h); serr != nil {
				return nil, serr
			}
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, b.classify("load", h, err)
	}
	return body, nil
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := check(h); err != nil {
		return backend.FileInfo{}, err
	}
	oi, err := b.client.StatObject(ctx, b.cfg.Bucket, b.key(h), minio.StatObjectOptions{})
	if err != nil {
		return backend.FileInfo{}, b.classify("stat", h, err)
	}
	name := h.Name
	if h.Type == backend.ConfigFile {
		name = "config"
	}
	return backend.FileInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List calls fn for every file of type t; minio-go pages through the
// listing (1000 keys per request).
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if err := checkType(t); err != nil {
		return err
	}
	if t == backend.ConfigFile {
		fi, err := b.Stat(ctx, backend.Handle{Type: t})
		if errors.Is(err, backend.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir := b.dir(t)
	ch := b.client.ListObjects(lctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true})
	drain := func() {
		cancel()
		for range ch {
		}
	}
	for oi := range ch {
		if oi.Err != nil {
			drain()
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list %s: %w", t, err)
			}
			return b.classify("list "+string(t), backend.Handle{}, oi.Err)
		}
		rel := strings.TrimPrefix(oi.Key, dir)
		if strings.HasSuffix(rel, "/") || rel == "" {
			continue
		}
		if t == backend.PackFile {
			// data/xx/<name>: take the name, skip anything deeper.
			if strings.Count(rel, "/") > 1 {
				continue
			}
		} else if strings.Contains(rel, "/") {
			continue
		}
		if err := fn(backend.FileInfo{Name: path.Base(rel), Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			drain()
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	return nil
}

// Remove deletes h. In a versioned bucket it deletes every version of
// the key (and any delete markers), so that the data is really gone; a
// version still under retention makes it fail with an error matching
// backend.ErrProtected.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := check(h); err != nil {
		return err
	}
	key := b.key(h)
	if !b.versioned {
		if _, err := b.Stat(ctx, h); err != nil {
			return err
		}
		if err := b.client.RemoveObject(ctx, b.cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
			return b.classify("remove", h, err)
		}
		return nil
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var versions []minio.ObjectInfo
	for oi := range b.client.ListObjects(lctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true, Recursive: true}) {
		if oi.Err != nil {
			cancel()
			return b.classify("remove", h, oi.Err)
		}
		if oi.Key == key {
			versions = append(versions, oi)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	exists := false
	var until time.Time
	var mode string
	for _, v := range versions {
		if !v.IsDeleteMarker {
			exists = true
		}
		err := b.client.RemoveObject(ctx, b.cfg.Bucket, key, minio.RemoveObjectOptions{VersionID: v.VersionID})
		if err == nil {
			continue
		}
		// AWS answers AccessDenied, MinIO InvalidRequest ("Object is WORM
		// protected"): ask the object itself whether retention holds it.
		if resp := minio.ToErrorResponse(err); resp.StatusCode >= 400 && resp.StatusCode < 500 {
			m, u, rerr := b.client.GetObjectRetention(ctx, b.cfg.Bucket, key, v.VersionID)
			if rerr == nil && u != nil && u.After(b.now()) {
				if u.After(until) {
					until = *u
					if m != nil {
						mode = string(*m)
					}
				}
				continue
			}
		}
		return b.classify("remove", h, err)
	}
	if !until.IsZero() {
		return fmt.Errorf("remove %v: %w until %s (S3 object lock, %s mode)", h, backend.ErrProtected, until.UTC().Format(time.RFC3339), strings.ToLower(mode))
	}
	if !exists {
		return fmt.Errorf("remove %v: %w", h, backend.ErrNotExist)
	}
	return nil
}

// FreeSpace returns the configured quota minus what the bucket holds
// (every version counts), or an error matching backend.ErrSpaceUnknown
// without ?quota=.
func (b *Backend) FreeSpace(ctx context.Context) (int64, error) {
	if b.cfg.Quota <= 0 {
		return 0, fmt.Errorf("%s: %w (set ?quota=SIZE on the location to check it)", b.cfg, backend.ErrSpaceUnknown)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var used int64
	for oi := range b.client.ListObjects(lctx, b.cfg.Bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: b.versioned}) {
		if oi.Err != nil {
			cancel()
			return 0, b.classify("measure bucket usage", backend.Handle{}, oi.Err)
		}
		used += oi.Size
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return max(b.cfg.Quota-used, 0), nil
}

// ClockSkew returns how far the server's clock (its Date header) is ahead
// of the local one; negative when it is behind. The Date header has a
// resolution of one second, so the result is accurate to about a second.
// S3 rejects requests signed more than 15 minutes off.
func (b *Backend) ClockSkew(ctx context.Context) (time.Duration, error) {
	u := *b.client.EndpointURL()
	u.Path = "/" + b.cfg.Bucket
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.String(), nil)
	if err != nil {
		return 0, err
	}
	t0 := b.now()
	resp, err := (&http.Client{Transport: b.transport}).Do(req)
	if err != nil {
		return 0, b.classify("read server clock", backend.Handle{}, err)
	}
	t1 := b.now()
	resp.Body.Close()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, fmt.Errorf("%s: read server clock: no valid Date header: %w", b.cfg, err)
	}
	// The header is truncated to the second: add half a second.
	local := t0.Add(t1.Sub(t0) / 2)
	return date.Add(500 * time.Millisecond).Sub(local), nil
}

// classify wraps err with the operation and marks it per the backend
// contract: missing keys match backend.ErrNotExist, server-side and
// network failures are transient.
func (b *Backend) classify(op string, h backend.Handle, err error) error {
	what := op
	if h.Type != "" {
		what = fmt.Sprintf("%s %v", op, h)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NoSuchVersion":
		return fmt.Errorf("%s: %w", what, backend.ErrNotExist)
	case "NoSuchBucket":
		return fmt.Errorf("%s at %s: bucket %q does not exist (run 'einvault init' to create it): %w", what, b.cfg, b.cfg.Bucket, backend.ErrNotExist)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
		return fmt.Errorf("%s at %s: %w (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the key's permissions)", what, b.cfg, err)
	case "RequestTimeTooSkewed":
		return fmt.Errorf("%s at %s: %w (the local clock is off; sync it with NTP)", what, b.cfg, err)
	case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "OperationAborted", "XMinioServerNotInitialized", "XMinioStorageFull":
		return backend.Transient(fmt.Errorf("%s at %s: %w", what, b.cfg, err))
	}
	if resp.StatusCode == http.StatusNotFound && resp.Code == "" && h.Type != "" {
		return fmt.Errorf("%s: %w", what, backend.ErrNotExist)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
		return backend.Transient(fmt.Errorf("%s at %s: %w", what, b.cfg, err))
	}
	if transientNet(err) {
		return backend.Transient(fmt.Errorf("%s at %s: %w (is the server reachable?)", what, b.cfg, err))
	}
	var cerr *tls.CertificateVerificationError
	if errors.As(err, &cerr) {
		return fmt.Errorf("%s at %s: %w (trust the server's CA with EINVAULT_S3_CA_FILE or AWS_CA_BUNDLE)", what, b.cfg, err)
	}
	return fmt.Errorf("%s at %s: %w", what, b.cfg, err)
}

// transientNet reports network failures that a later attempt may not
// meet: timeouts, refused or reset connections, truncated responses.
func transientNet(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, io.ErrUnexpectedEOF, io.EOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}
