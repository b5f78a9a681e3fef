package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/chunker"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/compress"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// FormatVersion is the newest repository format this code reads, and the one it writes.
// Version 2 added the config's hash (BLAKE3 by default); version 1 repositories are
// SHA-256 throughout and are read and written as they are.
const FormatVersion = 2

// Object names (docs/repository-format.md).
const (
	configKey   = "config"
	keysPrefix  = "keys/"
	indexPrefix = "index/"
	snapPrefix  = "snapshots/"
	locksPrefix = "locks/"
)

// DefaultPackSize is where packs are cut: few object-store requests, little memory.
const DefaultPackSize = 16 << 20

// MaxPackSize bounds the pack size a config may set: a backup holds a few packs in
// memory, so a config (sealed, but written by whoever has the key) saying gigabytes would
// make every backup allocate them.
const MaxPackSize = 128 << 20

// Config is the repository's sealed configuration.
type Config struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// ChunkerAlgorithm names the boundary algorithm: a different one would stop
	// deduplication against existing data, so it is checked on open.
	ChunkerAlgorithm string         `json:"chunkerAlgorithm"`
	Chunker          chunker.Params `json:"chunker"`
	ChunkerSeed      [32]byte       `json:"chunkerSeed"`
	Compression      string         `json:"compression"`
	PackSize         int            `json:"packSize"`
	// Hash names the hash function of blob ids and object names (crypto.BLAKE3 or
	// crypto.SHA256); absent in version 1, which is SHA-256.
	Hash string `json:"hash,omitempty"`
}

// hashing returns the Hashing the config names, keyed with mac.
func (c Config) hashing(mac [32]byte) (*crypto.Hashing, error) {
	switch {
	case c.Version <= 1 && c.Hash == "":
		return crypto.NewHashing(crypto.SHA256, mac)
	case c.Version <= 1:
		return nil, fmt.Errorf("config: a version %d repository names no hash, this one names %q", c.Version, c.Hash)
	case c.Hash == "":
		return nil, fmt.Errorf("config: version %d needs a hash and none is named", c.Version)
	}
	return crypto.NewHashing(c.Hash, mac)
}

// Errors callers tell apart.
var (
	ErrNoRepository  = errors.New("no repository here")
	ErrExists        = errors.New("a repository already exists here")
	ErrWrongPassword = errors.New("wrong password")
)

// InitOptions choose a new repository's parameters; the zero value gives the defaults.
type InitOptions struct {
	// KDF is the cost of deriving a key from the password (default crypto.DefaultKDF;
	// tests use cheap parameters).
	KDF crypto.KDFParams
	// Compression is the codec name (default compress.Default).
	Compression string
	// Chunker sizes (default chunker.DefaultParams).
	Chunker chunker.Params
	// PackSize is the target pack size (default DefaultPackSize).
	PackSize int
	// ChunkerSeed fixes the chunker seed (tests); zero means random.
	ChunkerSeed [32]byte
	// Hash is the hash of ids and object names (default crypto.BLAKE3). crypto.SHA256
	// writes a version 1 repository, which programs before version 2 can read.
	Hash string
}

func (o *InitOptions) applyDefaults() {
	if o.KDF == (crypto.KDFParams{}) {
		o.KDF = crypto.DefaultKDF
	}
	if o.Compression == "" {
		o.Compression = compress.Default.String()
	}
	if o.Chunker == (chunker.Params{}) {
		o.Chunker = chunker.DefaultParams
	}
	if o.PackSize == 0 {
		o.PackSize = DefaultPackSize
	}
	if o.Hash == "" {
		o.Hash = crypto.BLAKE3
	}
}

// Init creates a repository in b protected by password.
func Init(ctx context.Context, b Backend, password []byte, opts InitOptions, ro Options) (*Repository, error) {
	opts.applyDefaults()
	if len(password) == 0 {
		return nil, errors.New("the repository password is empty: give a password file or STASH_PASSWORD")
	}
	if err := opts.Chunker.Validate(); err != nil {
		return nil, err
	}
	if opts.PackSize < 0 || opts.PackSize > MaxPackSize {
		return nil, fmt.Errorf("pack size %d is not between 1 and %d bytes", opts.PackSize, MaxPackSize)
	}
	if _, err := compress.ParseCodec(opts.Compression); err != nil {
		return nil, err
	}
	if _, err := b.Get(ctx, configKey); err == nil {
		return nil, fmt.Errorf("%s: %w", b.URL(), ErrExists)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	key, err := crypto.NewRandomKey()
	if err != nil {
		return nil, err
	}
	cfg := Config{Version: FormatVersion, Created: time.Now().UTC(), ChunkerAlgorithm: chunker.Algorithm, Chunker: opts.Chunker,
		Compression: opts.Compression, PackSize: opts.PackSize, ChunkerSeed: opts.ChunkerSeed, Hash: opts.Hash}
	if cfg.Hash == crypto.SHA256 {
		cfg.Version, cfg.Hash = 1, ""
	}
	if _, err := cfg.hashing(key.MAC); err != nil {
		return nil, err
	}
	id, err := crypto.NewSalt()
	if err != nil {
		return nil, err
	}
	cfg.ID = crypto.ID(id).String()
	if cfg.ChunkerSeed == ([32]byte{}) {
		seed, err := crypto.NewSalt()
		if err != nil {
			return nil, err
		}
		copy(cfg.ChunkerSeed[:], seed)
	}
	// The key file first: a crash before the config leaves a stray key file, and init can
	// simply run again. Open skips key files whose master key does not open the config.
	if _, err := AddKey(ctx, b, key, password, opts.KDF); err != nil {
		return nil, err
	}
	plain, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.PutIfAbsent(ctx, configKey, key.Seal(nil, plain, []byte("config"))); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("%s: %w", b.URL(), ErrExists)
		}
		return nil, err
	}
	return newRepository(b, key, cfg, ro)
}

// keyFile is the plain JSON of keys/<id>.
type keyFile struct {
	Version  int       `json:"version"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host,omitempty"`
	Username string    `json:"username,omitempty"`
	KDF      string    `json:"kdf"`
	crypto.KDFParams
	Salt []byte `json:"salt"`
	Data []byte `json:"data"`
}

// AddKey writes a key file that opens master with password, and returns its id.
func AddKey(ctx context.Context, b Backend, master *crypto.Key, password []byte, kdf crypto.KDFParams) (string, error) {
	salt, err := crypto.NewSalt()
	if err != nil {
		return "", err
	}
	aead, err := crypto.PasswordAEAD(password, salt, kdf)
	if err != nil {
		return "", err
	}
	mk, err := json.Marshal(master)
	if err != nil {
		return "", err
	}
	host, _ := os.Hostname()
	kf := keyFile{Version: 1, Created: time.Now().UTC(), Host: host, KDF: "scrypt", KDFParams: kdf,
		Salt: salt, Data: crypto.Seal(aead, nil, mk, []byte("key"))}
	if u, err := user.Current(); err == nil {
		kf.Username = u.Username
	}
	raw, err := json.Marshal(kf)
	if err != nil {
		return "", err
	}
	name, err := crypto.NewSalt()
	if err != nil {
		return "", err
	}
	id := crypto.ID(name).String()
	return id, b.PutIfAbsent(ctx, keysPrefix+id, raw)
}

// Open opens the repository in b with password.
func Open(ctx context.Context, b Backend, password []byte, ro Options) (*Repository, error) {
	sealedCfg, err := b.Get(ctx, configKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w (create one with `stash-job init`)", b.URL(), ErrNoRepository)
	}
	if err != nil {
		return nil, err
	}
	var keyNames []string
	err = b.List(ctx, keysPrefix, func(o store.Object) error {
		keyNames = append(keyNames, o.Key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(keyNames) == 0 {
		return nil, fmt.Errorf("%s: the repository has no key files: it cannot be opened", b.URL())
	}
	for _, name := range keyNames {
		raw, err := b.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		var kf keyFile
		if err := json.Unmarshal(raw, &kf); err != nil || kf.KDF != "scrypt" {
			continue // not a key file this version understands; another may be
		}
		aead, err := crypto.PasswordAEAD(password, kf.Salt, kf.KDFParams)
		if err != nil {
			continue
		}
		mk, err := crypto.Open(aead, nil, kf.Data, []byte("key"))
		if err != nil {
			continue
		}
		var key crypto.Key
		if err := json.Unmarshal(mk, &key); err != nil {
			continue
		}
		if err := key.Init(); err != nil {
			continue
		}
		plain, err := key.Open(nil, sealedCfg, []byte("config"))
		if err != nil {
			continue // a stray key file of an interrupted init
		}
		var cfg Config
		if err := json.Unmarshal(plain, &cfg); err != nil {
			return nil, fmt.Errorf("%s: config: %w", b.URL(), err)
		}
		if cfg.ChunkerAlgorithm != chunker.Algorithm {
			return nil, fmt.Errorf("%s: chunker algorithm %q is not supported by this version (it knows %q): upgrade kubectl-stash", b.URL(), cfg.ChunkerAlgorithm, chunker.Algorithm)
		}
		if cfg.Version > FormatVersion {
			return nil, fmt.Errorf("%s: repository format version %d is newer than this program's (%d): upgrade kubectl-stash", b.URL(), cfg.Version, FormatVersion)
		}
		// Init writes only parameters that pass these checks; anything else would make a
		// backup allocate what the config says, or chunk with sizes the chunker refuses.
		if err := cfg.Chunker.Validate(); err != nil {
			return nil, fmt.Errorf("%s: config: %w", b.URL(), err)
		}
		if cfg.PackSize > MaxPackSize {
			return nil, fmt.Errorf("%s: config: pack size %d is above %d bytes", b.URL(), cfg.PackSize, MaxPackSize)
		}
		// The key derivation used tens of MiB for a moment: give them back now, so they do
		// not stay in the process's footprint for the whole backup.
		debug.FreeOSMemory()
		return newRepository(b, &key, cfg, ro)
	}
	return nil, fmt.Errorf("%s: %w (no key file opens with it)", b.URL(), ErrWrongPassword)
}

// ReadPassword reads a password from a file (trailing newline removed) or, with file
// empty, from the STASH_PASSWORD environment variable.
func ReadPassword(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return nil, fmt.Errorf("password file %s is empty", file)
		}
		return []byte(p), nil
	}
	if p := os.Getenv("STASH_PASSWORD"); p != "" {
		return []byte(p), nil
	}
	return nil, errors.New("no repository password: give --password-file FILE or set STASH_PASSWORD")
}
