package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Cipher seals the entries of every batch of an encrypted segment. The unit
// sealed is one batch's entries (lengths, LSNs and bytes); the batch header
// stays in the clear (its CRC covers the sealed bytes, so recovery finds the
// end of the log without the key). The associated data binds a sealed batch
// to its place: the segment's ID and salt, the batch's sequence number,
// entry count and LSN range; a batch moved to another offset or segment, or
// altered, fails to open with ErrDecrypt.
//
// Implementations must be safe for concurrent use.
type Cipher interface {
	// Name names the algorithm ("AES-256-GCM").
	Name() string
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead() int
	// Seal appends to dst the sealed form of plaintext, authenticating ad.
	Seal(dst, plaintext, ad []byte) ([]byte, error)
	// Open appends to dst the plaintext of sealed; it fails when the key is
	// wrong or sealed or ad were altered.
	Open(dst, sealed, ad []byte) ([]byte, error)
}

// NewAESGCM returns AES-256-GCM with a 32-byte key. Every Seal draws a fresh
// random 96-bit nonce (stored in front of the ciphertext), never derived
// from an LSN: after a rollback the same LSN may be written again with
// other bytes.
func NewAESGCM(key []byte) (Cipher, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: AES-256-GCM needs a 32-byte key, got %d bytes", ErrBadConfig, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return aesGCM{g}, nil
}

type aesGCM struct{ aead cipher.AEAD }

func (c aesGCM) Name() string  { return "AES-256-GCM" }
func (c aesGCM) Overhead() int { return c.aead.NonceSize() + c.aead.Overhead() }

func (c aesGCM) Seal(dst, plaintext, ad []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	n := len(dst)
	dst = append(dst, make([]byte, ns)...)
	if _, err := rand.Read(dst[n : n+ns]); err != nil {
		return nil, err
	}
	return c.aead.Seal(dst, dst[n:n+ns], plaintext, ad), nil
}

func (c aesGCM) Open(dst, sealed, ad []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	if len(sealed) < ns+c.aead.Overhead() {
		return nil, errors.New("sealed batch too short")
	}
	return c.aead.Open(dst, sealed[:ns], sealed[ns:], ad)
}
