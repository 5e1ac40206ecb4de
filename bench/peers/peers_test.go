package peers

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dwal-project/dwal/bench"
)

// TestReopenGoesOn: each peer writes, closes, reopens its directory as the
// restart workload does and writes on after what is there; reading the
// directory back finds everything, in order.
func TestReopenGoesOn(t *testing.T) {
	const each, size = 40, 64
	for _, s := range Systems() {
		t.Run(s.Name(), func(t *testing.T) {
			cfg := bench.Config{Dir: t.TempDir(), Workload: "restart", Writers: 4, EntrySize: size}
			entry := func(i int) []byte { return fmt.Appendf(nil, "%-*d", size, i) }
			write := func(l bench.Log, from int) {
				t.Helper()
				for i := from; i < from+each; i++ {
					if err := l.Commit(uint64(i), entry(i)); err != nil {
						t.Fatal(err)
					}
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			l, err := s.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			write(l, 1)
			l, err = s.(bench.Reopener).Reopen(cfg)
			if err != nil {
				t.Fatal(err)
			}
			write(l, 1+each)

			var got []string
			keep := func(b []byte) { got = append(got, string(b)) }
			if s.Name() == "pebble" {
				// A restart leaves two WAL files, as it does in Pebble.
				for n := uint64(1); n <= 2; n++ {
					if err := pebbleRead(cfg.Dir, n, keep); err != nil {
						t.Fatalf("%s: %v", filepath.Join(cfg.Dir, pebbleLogName(n)), err)
					}
				}
			} else if err := s.(bench.Replayer).Replay(cfg, keep); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2*each {
				t.Fatalf("read %d entries back, want %d", len(got), 2*each)
			}
			for i, g := range got {
				if want := string(entry(i + 1)); g != want {
					t.Fatalf("entry %d: %q, want %q", i+1, g, want)
				}
			}
		})
	}
}
