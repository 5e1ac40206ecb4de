package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// Cipher encrypts the entries of encrypted segments, each segment under a
// key of its own. It holds master keys, each with an ID (a keyring).
//
// What is encrypted: one batch's entries (lengths, LSNs and bytes); the
// batch header stays in the clear (its CRC covers the encrypted bytes, so
// recovery finds the end of the log without the key). The associated data
// binds an encrypted batch to its place: the segment's ID and salt, the
// batch's sequence number, entry count and LSN range; a batch moved to
// another offset or segment, or altered, fails to decrypt with ErrDecrypt.
//
// Keys: a new segment is encrypted under a key derived from master key
// KeyID and the segment's identity (Segment's info: the key ID, the
// segment's ID and salt, and 16 random bytes drawn for its header), and
// records KeyID in its header. A segment opens with the master key its
// header names, whatever KeyID is now: keys rotate without rewriting
// anything. A recycled segment file gets a new header, so a new key.
//
// Nonce budget: AES-GCM must never encrypt two messages under one key with
// one nonce (that leaks the authentication key and the XOR of the two
// plaintexts), and NIST SP 800-38D caps random 96-bit nonces at 2^32
// messages per key. A key here serves one segment: about SegmentSize /
// alignment batches (16,384 for 64 MiB at 4 KiB), whatever the log's age.
// A batch's nonce is the SegmentCipher's count of Encrypt calls (u32, big
// endian; Encrypt fails rather than wrap after 2^32, which would take a
// 16 TiB segment) followed by 8 random bytes. The engine makes one
// SegmentCipher per segment it writes, and only one process writes a
// segment (Open seals the one a crashed process left; a rollback seals
// its segment), so no two batches under one key share a count: not even a
// batch written again after a rollback, whose sequence number and offset
// repeat but whose count does not (it never goes back). Should two writers
// ever use one key (a virtual machine resumed twice from one snapshot),
// their nonces of equal count differ in 64 random bits: each such pair
// repeats with probability 2^-64. (A count alone would repeat then; random
// nonces alone would only make a repeat unlikely, where the count makes it
// impossible for one writer.) Another Cipher must keep the same promise:
// no nonce repeated under a key by one SegmentCipher, whatever it is
// given.
//
// Implementations must be safe for concurrent use.
type Cipher interface {
	// Name names the algorithm ("AES-256-GCM").
	Name() string
	// Overhead is how many bytes Encrypt of every SegmentCipher adds to a
	// plaintext.
	Overhead() int
	// KeyID is the ID of the master key new segments are encrypted under.
	KeyID() uint32
	// Segment returns the cipher of one segment, whose key derives from
	// master key keyID and info: bytes unique to the segment
	// (segment.KeyInfoLen of them), never given for another. A nil info
	// names a segment of format 1, written before segments had keys of
	// their own: its batches were encrypted under master key keyID (0)
	// itself, each with a random 96-bit nonce. Segment fails when the
	// cipher holds no key keyID.
	Segment(keyID uint32, info []byte) (SegmentCipher, error)
}

// SegmentCipher encrypts and decrypts the batches of one segment. It must
// be safe for concurrent use (batches in flight are encrypted at once).
type SegmentCipher interface {
	// Encrypt appends to dst the encrypted form of plaintext (Overhead
	// bytes longer), authenticating ad. plaintext must not overlap dst's
	// spare capacity.
	Encrypt(dst, plaintext, ad []byte) ([]byte, error)
	// Decrypt appends to dst the plaintext of ciphertext; it fails when the
	// key is wrong or ciphertext or ad were altered.
	Decrypt(dst, ciphertext, ad []byte) ([]byte, error)
}

// NewAESGCM returns AES-256-GCM with one 32-byte master key, of ID 0: the
// keyring NewAESGCMKeyring(0, {0: key}).
func NewAESGCM(key []byte) (Cipher, error) {
	return NewAESGCMKeyring(0, map[uint32][]byte{0: key})
}

// NewAESGCMKeyring returns AES-256-GCM over a keyring of 32-byte master
// keys by ID: new segments are encrypted under key current; a segment
// opens when the ring holds the key its header names. Segments written
// before key IDs (format 1) name key 0. To rotate, add a key under a new
// ID and make it current; keep an old key until no segment names it (the
// segments encrypted under it are deleted). The keys are copied.
//
// A segment's key is HKDF-SHA256 (RFC 5869) of its master key (no salt: the
// master key is uniformly random already) with the info
// "dwal segment key\x00" + the segment's info (see Cipher.Segment).
func NewAESGCMKeyring(current uint32, keys map[uint32][]byte) (Cipher, error) {
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("%w: the keyring holds no key %d (the current one)", ErrBadConfig, current)
	}
	r := &keyring{current: current, keys: make(map[uint32][]byte, len(keys))}
	for id, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("%w: AES-256-GCM needs a 32-byte key, got %d bytes for key %d", ErrBadConfig, len(k), id)
		}
		r.keys[id] = slices.Clone(k)
	}
	r.ids = slices.Sorted(maps.Keys(r.keys))
	return r, nil
}

// keyring is NewAESGCMKeyring's Cipher.
type keyring struct {
	current uint32
	keys    map[uint32][]byte // read only
	ids     []uint32          // sorted, for messages
}

// keyLabel starts the HKDF info of every segment key.
const keyLabel = "dwal segment key\x00"

// Nonces: a 4-byte count of Encrypt calls (big endian), then random bytes.
const (
	nonceLen    = 12
	nonceCount  = 4
	maxEncrypts = 1 << 32
)

// errNonceBudget: a SegmentCipher encrypted maxEncrypts batches.
var errNonceBudget = errors.New("dwal: segment key used for 2^32 batches: no nonce left")

func (r *keyring) Name() string  { return "AES-256-GCM" }
func (r *keyring) Overhead() int { return nonceLen + 16 }
func (r *keyring) KeyID() uint32 { return r.current }

func (r *keyring) Segment(keyID uint32, info []byte) (SegmentCipher, error) {
	master, ok := r.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("key %d is not in the keyring (it holds keys %v)", keyID, r.ids)
	}
	if info == nil {
		aead, err := newGCM(master)
		return format1GCM{aead}, err
	}
	k, err := deriveKey(master, info)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(k)
	clear(k)
	if err != nil {
		return nil, err
	}
	return &segmentGCM{aead: aead}, nil
}

// deriveKey is a segment's key: HKDF-SHA256 of master with keyLabel+info.
func deriveKey(master, info []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, master, nil, keyLabel+string(info), 32)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// segmentGCM is the cipher of one segment of format 2: its own key, nonces
// of a count and random bytes (see Cipher).
type segmentGCM struct {
	aead cipher.AEAD
	n    atomic.Uint64 // Encrypt calls so far
}

func (c *segmentGCM) Encrypt(dst, plaintext, ad []byte) ([]byte, error) {
	n := c.n.Add(1) - 1
	if n >= maxEncrypts {
		return nil, errNonceBudget
	}
	i := len(dst)
	dst = append(dst, make([]byte, nonceLen)...)
	nonce := dst[i : i+nonceLen]
	binary.BigEndian.PutUint32(nonce, uint32(n))
	if _, err := rand.Read(nonce[nonceCount:]); err != nil {
		return nil, err
	}
	return c.aead.Seal(dst, nonce, plaintext, ad), nil
}

func (c *segmentGCM) Decrypt(dst, ciphertext, ad []byte) ([]byte, error) {
	return openGCM(c.aead, dst, ciphertext, ad)
}

// format1GCM is the cipher of a segment of format 1: a master key itself,
// random 96-bit nonces (the engine only reads such segments).
type format1GCM struct{ aead cipher.AEAD }

func (c format1GCM) Encrypt(dst, plaintext, ad []byte) ([]byte, error) {
	i := len(dst)
	dst = append(dst, make([]byte, nonceLen)...)
	if _, err := rand.Read(dst[i : i+nonceLen]); err != nil {
		return nil, err
	}
	return c.aead.Seal(dst, dst[i:i+nonceLen], plaintext, ad), nil
}

func (c format1GCM) Decrypt(dst, ciphertext, ad []byte) ([]byte, error) {
	return openGCM(c.aead, dst, ciphertext, ad)
}

// openGCM decrypts a nonce-prefixed ciphertext.
func openGCM(aead cipher.AEAD, dst, ciphertext, ad []byte) ([]byte, error) {
	if len(ciphertext) < nonceLen+aead.Overhead() {
		return nil, errors.New("encrypted batch too short")
	}
	return aead.Open(dst, ciphertext[:nonceLen], ciphertext[nonceLen:], ad)
}

// segmentCipher returns the cipher of the segment whose header is h: nil
// for a plain segment; for an encrypted one, Config.Cipher's for the key h
// names. It fails with an error wrapping ErrDecrypt that names the segment
// and the key when there is no Config.Cipher or it lacks that key. A
// segment's cipher is asked for once per use (writing the segment, a read
// handle, a scan), never per batch: deriving a key costs microseconds.
func (c *Coordinator) segmentCipher(h *segment.Header) (SegmentCipher, error) {
	var derive func(uint32, []byte) (SegmentCipher, error)
	if c.cfg.Cipher != nil {
		derive = c.cfg.Cipher.Segment
	}
	return segment.CipherFor(h, derive)
}

// keys is segmentCipher as segment.Scan asks for it.
func (c *Coordinator) keys(h *segment.Header) (segment.Decrypter, error) {
	return c.segmentCipher(h)
}

// newKeyHeader marks h, a new segment's header, encrypted under
// Config.Cipher's current key when there is one: format 2, with a fresh
// key salt. Plain segments keep format 1, which every dwal reads.
func (c *Coordinator) newKeyHeader(h *segment.Header) error {
	if c.cfg.Cipher == nil {
		return nil
	}
	h.Flags |= segment.FlagEncrypted
	h.KeyID = c.cfg.Cipher.KeyID()
	_, err := rand.Read(h.KeySalt[:])
	return err
}

// errKeyOK stops a key check's scan after the first entry decrypted.
var errKeyOK = errors.New("key ok")

// checkKeys makes a missing or wrong key fail Open with ErrDecrypt rather
// than a later Replay: for every key the encrypted segments name, it gets
// the newest such segment's cipher and decrypts its first batch.
func (c *Coordinator) checkKeys(segs []*segFile) error {
	type keyOf struct {
		format1 bool // the master key itself, not keys derived from it
		id      uint32
	}
	seen := map[keyOf]bool{}
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		k := keyOf{s.hdr.Version < segment.Version2, s.hdr.KeyID}
		if !s.hdr.Encrypted() || seen[k] {
			continue
		}
		seen[k] = true
		if err := c.checkKey(s.id); err != nil {
			return err
		}
	}
	return nil
}

// checkKey decrypts the first batch of segment id.
func (c *Coordinator) checkKey(id uint64) error {
	f, err := c.fs.Open(segment.Name(id), true)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return err
	}
	_, err = segment.Scan(f, c.align, size, segment.ScanOptions{Keys: c.keys, Entry: func(int64, segment.Entry) error { return errKeyOK }})
	if err != nil && !errors.Is(err, errKeyOK) {
		return fmt.Errorf("%s: %w", segment.Name(id), err)
	}
	return nil
}
