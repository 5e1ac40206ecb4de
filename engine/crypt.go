package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Cipher encrypts the entries of every batch of an encrypted segment. The
// unit encrypted is one batch's entries (lengths, LSNs and bytes); the batch
// header stays in the clear (its CRC covers the encrypted bytes, so recovery
// finds the end of the log without the key). The associated data binds an
// encrypted batch to its place: the segment's ID and salt, the batch's sequence number,
// entry count and LSN range; a batch moved to another offset or segment, or
// altered, fails to decrypt with ErrDecrypt.
//
// Implementations must be safe for concurrent use.
type Cipher interface {
	// Name names the algorithm ("AES-256-GCM").
	Name() string
	// Overhead is how many bytes Encrypt adds to a plaintext.
	Overhead() int
	// Encrypt appends to dst the encrypted form of plaintext,
	// authenticating ad.
	Encrypt(dst, plaintext, ad []byte) ([]byte, error)
	// Decrypt appends to dst the plaintext of ciphertext; it fails when the
	// key is wrong or ciphertext or ad were altered.
	Decrypt(dst, ciphertext, ad []byte) ([]byte, error)
}

// NewAESGCM returns AES-256-GCM with a 32-byte key. Every Encrypt draws a fresh
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

func (c aesGCM) Encrypt(dst, plaintext, ad []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	n := len(dst)
	dst = append(dst, make([]byte, ns)...)
	if _, err := rand.Read(dst[n : n+ns]); err != nil {
		return nil, err
	}
	return c.aead.Seal(dst, dst[n:n+ns], plaintext, ad), nil
}

func (c aesGCM) Decrypt(dst, ciphertext, ad []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	if len(ciphertext) < ns+c.aead.Overhead() {
		return nil, errors.New("encrypted batch too short")
	}
	return c.aead.Open(dst, ciphertext[:ns], ciphertext[ns:], ad)
}
