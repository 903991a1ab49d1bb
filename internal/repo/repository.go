// Package repo implements repository format v1 on top of any backend:
// configuration and key files, sealed blobs grouped into packs, the index
// that locates them, trees, snapshots, locks and two-phase deletion.
//
// It knows nothing of invoices or of where data comes from; package
// archiver turns files into blobs and package restorer turns them back.
package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/klauspost/compress/zstd"
)

// Options tune how a repository is created and opened.
type Options struct {
	// KDF is used for new key files; zero means crypto.DefaultKDF.
	KDF crypto.KDFParams
	// PackSize overrides the target pack size at init (tests).
	PackSize int
	// Chunker overrides the chunker parameters at init (tests).
	Chunker ChunkerParams
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Uploads is the number of concurrent pack uploads (default 4).
	Uploads int
}

// Repository is an open repository. Its methods are safe for concurrent
// use unless noted.
type Repository struct {
	be      backend.Backend
	cfg     Config
	keys    *keyring
	keyName string
	keyFile KeyFile
	kdf     crypto.KDFParams
	log     *slog.Logger
	now     func() time.Time

	idx  *Index
	zenc *zstd.Encoder
	zdec *zstd.Decoder // guarded by codecMu, as are zdict and dicts
	// zdict compresses small blobs with the newest dictionary, if any.
	zdict   *zstd.Encoder
	dicts   []dictionary
	codecMu sync.RWMutex

	sealers sealerCache

	mu       sync.Mutex
	inflight IDSet
	packers  map[BlobType]*packerSet
	unsaved  []IndexPack // uploaded but not yet in an index file
	upErr    error
	upQueue  chan *finishedPack
	upWG     sync.WaitGroup
	uploads  int
	started  bool
	statsAdd PackStats
	written  []WrittenPack // packs this process stored, in upload order
	sealBuf  []byte
	bufPool  sync.Pool
	compPool sync.Pool
}

// PackStats counts what this process added.
type PackStats struct {
	Blobs       uint64
	RawBytes    uint64
	StoredBytes uint64
	Packs       uint64
}

func newRepository(be backend.Backend, opts Options) (*Repository, error) {
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(2<<20))
	if err != nil {
		return nil, err
	}
	zdec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecoderMaxMemory(1<<30), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	r := &Repository{be: be, zenc: zenc, zdec: zdec, idx: NewIndex(), inflight: IDSet{}, kdf: opts.KDF, log: opts.Logger, now: opts.Now, uploads: opts.Uploads}
	if r.kdf == (crypto.KDFParams{}) {
		r.kdf = crypto.DefaultKDF
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.uploads <= 0 {
		// Finished packs wait as files, not in memory, so several may be
		// in flight: durable writes (fsync) of one overlap the next.
		r.uploads = 4
	}
	r.compPool.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	r.bufPool.New = func() any { return bufio.NewWriterSize(nil, 1<<20) }
	r.sealers.m = map[[crypto.SaltSize + 4]byte]*crypto.Sealer{}
	return r, nil
}

// ErrRepoExists is returned by Init when a repository is already there.
var ErrRepoExists = errors.New("a repository already exists there")

// Init creates a repository in an empty backend and returns it open.
func Init(ctx context.Context, be backend.Backend, password []byte, opts Options) (*Repository, error) {
	if len(password) == 0 {
		return nil, errors.New("empty password: set EINVAULT_PASSWORD or use --password-file")
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile, Name: "config"}); err == nil {
		return nil, fmt.Errorf("%w at %s", ErrRepoExists, be.Location())
	} else if !errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("check for an existing repository: %w", err)
	}
	r, err := newRepository(be, opts)
	if err != nil {
		return nil, err
	}
	r.cfg = Config{Version: FormatVersion, ID: RandomID(), Created: r.now().UTC(), Chunker: DefaultChunker, PackSize: 16 << 20, SmallFile: DefaultChunker.Min}
	if opts.Chunker != (ChunkerParams{}) {
		r.cfg.Chunker = opts.Chunker
		r.cfg.SmallFile = opts.Chunker.Min
	}
	if opts.PackSize != 0 {
		r.cfg.PackSize = opts.PackSize
	}
	if err := r.cfg.Validate(); err != nil {
		return nil, err
	}
	cfgData, err := jsonIndent(r.cfg)
	if err != nil {
		return nil, err
	}
	if r.keys, err = newKeyring(); err != nil {
		return nil, err
	}
	r.keys.config = Hash(cfgData)
	if r.keyName, err = r.AddKey(ctx, password, "password", ""); err != nil {
		return nil, err
	}
	// The config goes last: a repository without it does not exist yet,
	// so an interrupted init can simply be run again.
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile, Name: "config"}, bytes.NewReader(cfgData), int64(len(cfgData))); err != nil {
		return nil, fmt.Errorf("save config: %w", err)
	}
	return r, nil
}

// ErrNoRepository is returned by Open when there is no config file.
var ErrNoRepository = errors.New("repository does not exist")

// Open opens a repository with a password, trying every key file.
func Open(ctx context.Context, be backend.Backend, password []byte, opts Options) (*Repository, error) {
	r, err := newRepository(be, opts)
	if err != nil {
		return nil, err
	}
	cfgData, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.ConfigFile, Name: "config"})
	if err != nil {
		if errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: no config file (create one with 'einvault init')", ErrNoRepository, be.Location())
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	if r.cfg, err = DecodeConfig(cfgData); err != nil {
		return nil, err
	}
	if len(password) == 0 {
		return nil, fmt.Errorf("%w (empty password: set EINVAULT_PASSWORD or use --password-file)", ErrWrongPassword)
	}
	var names []string
	err = be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		if _, err := ParseID(fi.Name); err == nil {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var damaged []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.KeyFile, Name: name})
		if err != nil {
			damaged = append(damaged, err)
			continue
		}
		kf, err := DecodeKeyFile(data)
		if err != nil {
			damaged = append(damaged, fmt.Errorf("keys/%s: %w", name[:8], err))
			continue
		}
		kr, err := kf.open(password, r.cfg.ID)
		if errors.Is(err, ErrWrongPassword) {
			continue
		}
		if err != nil {
			damaged = append(damaged, fmt.Errorf("keys/%s: %w", name[:8], err))
			continue
		}
		if kr.config != Hash(cfgData) {
			return nil, fmt.Errorf("%w: the config file was changed after the repository was created (it no longer matches the hash sealed in the key files): restore it from another copy", ErrDamaged)
		}
		r.keys, r.keyName, r.keyFile = kr, name, kf
		if err := r.loadDictionaries(ctx); err != nil {
			return nil, err
		}
		// Hand the key derivation's memory back before real work starts.
		debug.FreeOSMemory()
		return r, nil
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: the repository has no key files", ErrDamaged)
	}
	if len(damaged) > 0 {
		return nil, fmt.Errorf("%w (also: %v)", ErrWrongPassword, errors.Join(damaged...))
	}
	return nil, ErrWrongPassword
}

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the storage the repository lives in.
func (r *Repository) Backend() backend.Backend { return r.be }

// UseBackend replaces the storage the repository reads from with another
// view of the same repository, such as a replica.Set over all its copies.
// Call it right after Open, before loading the index.
func (r *Repository) UseBackend(be backend.Backend) { r.be = be }

// Index returns the in-memory index (load it with LoadIndex first).
func (r *Repository) Index() *Index { return r.idx }

// Now returns the repository clock's current time.
func (r *Repository) Now() time.Time { return r.now() }

// Logger returns the repository's logger.
func (r *Repository) Logger() *slog.Logger { return r.log }

// ChunkerKey is the secret that keys the chunker for new data.
func (r *Repository) ChunkerKey() []byte { return r.keys.current().ChunkerKey() }

// BlobID computes the ID new data gets.
func (r *Repository) BlobID(data []byte) ID { return ID(r.keys.current().BlobID(data)) }

// Stats returns what this process has added so far.
func (r *Repository) Stats() PackStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statsAdd
}

// WrittenPack is a pack this process stored.
type WrittenPack struct {
	ID   ID
	Size int64
}

// WrittenPacks returns the packs this process has stored so far (a
// backup's new packs), in upload order.
func (r *Repository) WrittenPacks() []WrittenPack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]WrittenPack(nil), r.written...)
}

// UseFastCompression compresses what this process saves from now on at
// zstd's fastest level instead of the default one. Call it before saving
// anything, not while blobs are being saved. Database dumps are long,
// very redundant streams that must keep up with the dump program: on
// them the fastest level keeps most of the default's ratio at about half
// its CPU time. Nothing is recorded: every zstd level decodes alike.
func (r *Repository) UseFastCompression() error {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(2<<20))
	if err != nil {
		return err
	}
	old := r.zenc
	r.zenc = enc
	return old.Close()
}

// Close flushes nothing: call Flush before Close when writing.
func (r *Repository) Close() error {
	r.zenc.Close()
	r.decoder().Close()
	return nil
}

// saveFile seals and stores a standalone file named by its BLAKE3.
func (r *Repository) saveFile(ctx context.Context, t backend.FileType, kind FileKind, payload []byte) (ID, error) {
	data, err := r.sealFile(kind, payload)
	if err != nil {
		return ID{}, err
	}
	id := Hash(data)
	if err := r.be.Save(ctx, backend.Handle{Type: t, Name: id.String()}, bytes.NewReader(data), int64(len(data))); err != nil {
		return ID{}, err
	}
	return id, nil
}

// loadFile loads and opens a standalone file, checking that its content
// matches its name.
func (r *Repository) loadFile(ctx context.Context, h backend.Handle, kind FileKind) ([]byte, error) {
	data, err := backend.LoadAll(ctx, r.be, h)
	if err != nil {
		return nil, err
	}
	if id, err := ParseID(h.Name); err == nil && Hash(data) != id {
		return nil, fmt.Errorf("%v: %w: content does not match its name (bit rot or tampering)", h, ErrDamaged)
	}
	plain, err := r.openFile(kind, data)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", h, err)
	}
	return plain, nil
}

// LoadIndex reads every index file into memory, in parallel.
func (r *Repository) LoadIndex(ctx context.Context) error {
	var names []ID
	err := r.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			names = append(names, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list index: %w", err)
	}
	work := make(chan ID)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				f, err := r.LoadIndexFile(ctx, id)
				if err != nil {
					if !errors.Is(err, backend.ErrNotExist) { // superseded meanwhile
						errs <- err
					}
					continue
				}
				for _, p := range f.Packs {
					r.idx.AddPack(p.PackInfo, p.Blobs)
				}
				r.idx.addFile(id)
			}
		}()
	}
	for _, id := range names {
		work <- id
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// LoadIndexFile reads and decodes one index file.
func (r *Repository) LoadIndexFile(ctx context.Context, id ID) (*IndexFile, error) {
	plain, err := r.loadFile(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}, KindIndex)
	if err != nil {
		return nil, err
	}
	f, err := DecodeIndexFile(plain)
	if err != nil {
		return nil, fmt.Errorf("index/%s: %w", id.Short(), err)
	}
	return f, nil
}

// SaveIndexFile writes an index file.
func (r *Repository) SaveIndexFile(ctx context.Context, f *IndexFile) (ID, error) {
	id, err := r.saveFile(ctx, backend.IndexFile, KindIndex, f.Encode())
	if err != nil {
		return ID{}, fmt.Errorf("save index: %w", err)
	}
	r.idx.addFile(id)
	return id, nil
}

type sealerCache struct {
	mu sync.Mutex
	m  map[[crypto.SaltSize + 4]byte]*crypto.Sealer
}

// sealer returns the (cached) sealer of a pack.
func (r *Repository) sealer(epoch uint32, salt [crypto.SaltSize]byte) (*crypto.Sealer, *crypto.Key, error) {
	k, err := r.keys.epoch(epoch)
	if err != nil {
		return nil, nil, err
	}
	var key [crypto.SaltSize + 4]byte
	copy(key[:], salt[:])
	key[16], key[17], key[18], key[19] = byte(epoch), byte(epoch>>8), byte(epoch>>16), byte(epoch>>24)
	r.sealers.mu.Lock()
	s, ok := r.sealers.m[key]
	r.sealers.mu.Unlock()
	if ok {
		return s, k, nil
	}
	s, err = k.Sealer(salt)
	if err != nil {
		return nil, nil, err
	}
	r.sealers.mu.Lock()
	if len(r.sealers.m) > 4096 {
		clear(r.sealers.m)
	}
	r.sealers.m[key] = s
	r.sealers.mu.Unlock()
	return s, k, nil
}

// OpenBlob decrypts, decompresses and verifies one sealed blob read from
// pack p. The plaintext is appended to buf[:0]. When the blob fails
// verification and the backend holds other copies (RangeHealer), the
// blob is read again from a copy whose pack is intact.
func (r *Repository) OpenBlob(p PackInfo, t BlobType, flags uint8, id ID, sealed, buf []byte) ([]byte, error) {
	plain, err := r.openBlob(p, t, flags, id, sealed, buf)
	if err != nil && errors.Is(err, ErrDamaged) {
		if healed, ok := r.heal(p, t, flags, id, len(sealed), buf); ok {
			return healed, nil
		}
	}
	return plain, err
}

func (r *Repository) openBlob(p PackInfo, t BlobType, flags uint8, id ID, sealed, buf []byte) ([]byte, error) {
	s, k, err := r.sealer(p.Epoch, p.Salt)
	if err != nil {
		return nil, err
	}
	plain, err := s.Open(buf[:0], sealed, blobAD(t, flags, id))
	if err != nil {
		return nil, fmt.Errorf("%w: %v blob %s in pack %s: %v", ErrDamaged, t, id.Short(), p.ID.Short(), err)
	}
	if flags&blobCompressed != 0 {
		out, err := r.decoder().DecodeAll(plain, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %v blob %s in pack %s: decompress: %v", ErrDamaged, t, id.Short(), p.ID.Short(), err)
		}
		plain = out
	}
	if ID(k.BlobID(plain)) != id {
		return nil, fmt.Errorf("%w: %v blob %s in pack %s: content does not match its ID", ErrDamaged, t, id.Short(), p.ID.Short())
	}
	return plain, nil
}

// ErrBlobMissing is returned when a blob is not in the index.
var ErrBlobMissing = errors.New("blob not found in the index")

// LoadBlob reads one blob.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	e, ok := r.idx.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("%v blob %s: %w (the repository is missing data: run 'einvault check')", t, id.Short(), ErrBlobMissing)
	}
	if e.Type != t {
		return nil, fmt.Errorf("%w: blob %s is a %v blob, expected %v", ErrDamaged, id.Short(), e.Type, t)
	}
	p := r.idx.PackOf(e)
	sealed, err := backend.LoadRange(ctx, r.be, backend.Handle{Type: backend.PackFile, Name: p.ID.String()}, int64(e.Offset), int64(e.Length), nil)
	if err != nil {
		return nil, fmt.Errorf("load %v blob %s from pack %s: %w", t, id.Short(), p.ID.Short(), asDamage(err))
	}
	return r.OpenBlob(p, t, e.Flags, id, sealed, buf)
}

// LoadTree loads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	data, err := r.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(data)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}

// SaveTree encodes and stores a tree, returning its ID.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (ID, error) {
	data, err := t.Encode()
	if err != nil {
		return ID{}, err
	}
	id := r.BlobID(data)
	_, _, err = r.SaveBlob(ctx, TreeBlob, id, data)
	return id, err
}

// PackHeader reads and decodes the header of a pack of the given size.
func (r *Repository) PackHeader(ctx context.Context, id ID, size int64) (PackInfo, []PackedBlob, error) {
	p := PackInfo{ID: id}
	if size < packTrailerSize+crypto.Overhead {
		return p, nil, fmt.Errorf("pack %s: %w: only %d bytes", id.Short(), ErrDamaged, size)
	}
	h := backend.Handle{Type: backend.PackFile, Name: id.String()}
	tb, err := backend.LoadRange(ctx, r.be, h, size-packTrailerSize, packTrailerSize, nil)
	if err != nil {
		return p, nil, err
	}
	t, err := decodePackTrailer(tb, size)
	if err != nil {
		return p, nil, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	p.Epoch, p.Salt = t.epoch, t.salt
	hstart := size - packTrailerSize - int64(t.headerLen)
	hb, err := backend.LoadRange(ctx, r.be, h, hstart, int64(t.headerLen), nil)
	if err != nil {
		return p, nil, err
	}
	s, _, err := r.sealer(t.epoch, t.salt)
	if err != nil {
		return p, nil, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	plain, err := s.Open(nil, hb, headerAD(t))
	if err != nil {
		return p, nil, fmt.Errorf("pack %s: %w: header: %v", id.Short(), ErrDamaged, err)
	}
	blobs, err := DecodePackHeader(plain, hstart)
	if err != nil {
		return p, nil, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	return p, blobs, nil
}

// DecodePack parses a whole pack file held in memory (check --read-data):
// it verifies the trailer and header and returns them.
func (r *Repository) DecodePack(data []byte) (PackInfo, []PackedBlob, error) {
	size := int64(len(data))
	if size < packTrailerSize+crypto.Overhead {
		return PackInfo{}, nil, fmt.Errorf("%w: pack of %d bytes is too short", ErrDamaged, size)
	}
	t, err := decodePackTrailer(data[size-packTrailerSize:], size)
	if err != nil {
		return PackInfo{}, nil, err
	}
	p := PackInfo{Epoch: t.epoch, Salt: t.salt}
	hstart := size - packTrailerSize - int64(t.headerLen)
	s, _, err := r.sealer(t.epoch, t.salt)
	if err != nil {
		return p, nil, err
	}
	plain, err := s.Open(nil, data[hstart:size-packTrailerSize], headerAD(t))
	if err != nil {
		return p, nil, fmt.Errorf("%w: pack header: %v", ErrDamaged, err)
	}
	blobs, err := DecodePackHeader(plain, hstart)
	return p, blobs, err
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
