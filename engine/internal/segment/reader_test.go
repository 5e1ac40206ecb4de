package segment

import (
	"bytes"
	"github.com/dwal-project/dwal/engine/align"
	"math/rand/v2"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// The read-ahead reader returns exactly the file's bytes for any mix of
// sequential, straddling, oversized and backward requests.
func TestReaderReturnsFileBytes(t *testing.T) {
	const a = 4096
	for seed := uint64(0); seed < 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		mem := memfs.New(a)
		size := int64(rng.IntN(40*a) + 1)
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		f, err := mem.Create("f", 0)
		if err != nil {
			t.Fatal(err)
		}
		padded := append(append([]byte(nil), want...), make([]byte, (a-int(size)%a)%a)...)
		buf := alignedCopy(padded, a)
		if err := f.WriteAt(buf, 0, 0); err != nil {
			t.Fatal(err)
		}
		f.Truncate(size)
		limit := size - int64(rng.IntN(int(min(size, 3*a))))
		r := newReader(f, a, limit)
		r.win = a * (1 + rng.IntN(4))
		off := int64(0)
		for step := 0; step < 200 && off < limit+a; step++ {
			n := 1 + rng.IntN(3*r.win)
			got, err := r.at(off, n)
			if err != nil {
				t.Fatalf("seed %d: at(%d,%d): %v", seed, off, n, err)
			}
			end := min(off+int64(n), limit)
			var exp []byte
			if off < limit {
				exp = want[off:end]
			}
			if !bytes.Equal(got, exp) {
				t.Fatalf("seed %d step %d: at(%d,%d) gave %d bytes, want %d (limit %d, win %d)", seed, step, off, n, len(got), len(exp), limit, r.win)
			}
			switch rng.IntN(10) {
			case 0:
				off -= int64(rng.IntN(2 * r.win)) // backward
				off = max(off, 0) &^ (a - 1)
			default:
				off += int64(align64(n, a)) // the next aligned batch
			}
		}
		r.close()
		f.Close()
	}
}

func align64(n, a int) int { return (n + a - 1) &^ (a - 1) }

func alignedCopy(b []byte, a int) []byte {
	out := align.Alloc(len(b), a)
	copy(out, b)
	return out
}
