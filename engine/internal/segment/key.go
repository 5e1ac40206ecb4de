package segment

import "fmt"

// CipherFor returns the cipher of the segment whose header is h: the zero
// C for a plain segment; for an encrypted one, what derive returns for the
// key h names (its KeyID and KeyInfo). It fails with an error wrapping
// ErrDecrypt that names the segment and the key when derive is nil (no
// cipher is set) or fails (the cipher lacks that key). The engine and the
// inspection tools both ask through it, so a segment's key is named alike
// everywhere.
func CipherFor[C any](h *Header, derive func(keyID uint32, info []byte) (C, error)) (C, error) {
	var none C
	if !h.Encrypted() {
		return none, nil
	}
	if derive == nil {
		return none, fmt.Errorf("%w: segment %d is encrypted under %s and no cipher is set", ErrDecrypt, h.ID, h.KeyName())
	}
	c, err := derive(h.KeyID, h.KeyInfo())
	if err != nil {
		return none, fmt.Errorf("%w: segment %d is encrypted under %s: %w", ErrDecrypt, h.ID, h.KeyName(), err)
	}
	return c, nil
}

// KeyName names the master key of an encrypted segment, for messages.
func (h *Header) KeyName() string {
	if h.Version < Version2 {
		return "key 0 (format 1: written before key IDs)"
	}
	return fmt.Sprintf("key %d", h.KeyID)
}
