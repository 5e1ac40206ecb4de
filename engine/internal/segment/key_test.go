package segment

import (
	"errors"
	"strings"
	"testing"
)

type fakeDecrypter struct{}

func (fakeDecrypter) Decrypt(dst, ciphertext, ad []byte) ([]byte, error) { return dst, nil }

func TestCipherFor(t *testing.T) {
	derive := func(keyID uint32, info []byte) (Decrypter, error) {
		if keyID != 3 {
			return nil, errors.New("no such key")
		}
		return fakeDecrypter{}, nil
	}
	plain := Header{Version: Version1, ID: 5}
	if d, err := CipherFor(&plain, derive); d != nil || err != nil {
		t.Fatalf("plain segment: %v %v", d, err)
	}
	enc := Header{Version: Version2, Flags: FlagEncrypted, ID: 5, KeyID: 3}
	if d, err := CipherFor(&enc, derive); d == nil || err != nil {
		t.Fatalf("key 3: %v %v", d, err)
	}
	enc.KeyID = 4
	if _, err := CipherFor(&enc, derive); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "segment 5 is encrypted under key 4: no such key") {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := CipherFor[Decrypter](&enc, nil); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "no cipher") {
		t.Fatalf("no cipher: %v", err)
	}
	old := Header{Version: Version1, Flags: FlagEncrypted, ID: 6}
	if _, err := CipherFor[Decrypter](&old, nil); err == nil || !strings.Contains(err.Error(), "key 0 (format 1") {
		t.Fatalf("format 1 without a cipher: %v", err)
	}
}
