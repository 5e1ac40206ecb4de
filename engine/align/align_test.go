package align

import (
	"errors"
	"testing"
	"unsafe"
)

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func TestCheck(t *testing.T) {
	b := Alloc(8192, 4096)
	for _, tc := range []struct {
		name string
		p    []byte
		off  int64
		a    int
		ok   bool
	}{
		{"aligned", b, 4096, 4096, true},
		{"aligned 512", b[512:1024], 512, 512, true},
		{"empty", b[:0], 0, 4096, false},
		{"short length", b[:4095], 0, 4096, false},
		{"odd offset", b[:4096], 100, 4096, false},
		{"negative offset", b[:4096], -4096, 4096, false},
		{"misaligned address", b[512 : 512+4096], 0, 4096, false},
		{"alignment not a power of two", b[:3000], 0, 3000, false},
	} {
		err := Check(tc.p, tc.off, tc.a)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, ErrMisaligned) {
			t.Errorf("%s: error does not wrap ErrMisaligned: %v", tc.name, err)
		}
	}
}

func TestAllocAndUp(t *testing.T) {
	for _, a := range []int{512, 4096, 65536} {
		for _, n := range []int{1, a, 3*a + 7} {
			b := Alloc(n, a)
			if len(b) != n || cap(b) != n || addr(b)%uintptr(a) != 0 {
				t.Fatalf("Alloc(%d,%d): len %d cap %d addr %#x", n, a, len(b), cap(b), addr(b))
			}
		}
	}
	if Up(1, 4096) != 4096 || Up(4096, 4096) != 4096 || Up(4097, 4096) != 8192 || Up64(0, 512) != 0 {
		t.Fatal("Up")
	}
}

func TestPool(t *testing.T) {
	p := NewPool(4096)
	bp := p.Get(5000)
	if len(*bp) != 8192 || addr(*bp)%4096 != 0 {
		t.Fatalf("Get(5000): len %d", len(*bp))
	}
	p.Put(bp)
	bp2 := p.Get(100)
	if len(*bp2) != 4096 || addr(*bp2)%4096 != 0 {
		t.Fatalf("Get(100): len %d", len(*bp2))
	}
	huge := p.Get(4096<<maxPooledShift + 1)
	if len(*huge) != 4096<<maxPooledShift+4096 || addr(*huge)%4096 != 0 {
		t.Fatalf("huge: len %d", len(*huge))
	}
	p.Put(huge) // dropped, not pooled
	if n := testing.AllocsPerRun(100, func() { p.Put(p.Get(4096)) }); n != 0 {
		t.Fatalf("steady-state Get/Put allocates %v", n)
	}
}

func TestDiscover(t *testing.T) {
	a, src := Discover(t.TempDir())
	if a < Default || a&(a-1) != 0 || src == "" {
		t.Fatalf("Discover: %d from %q", a, src)
	}
	if a, src := Discover("/nonexistent/dir"); a != Default || src != SourceDefault {
		t.Fatalf("Discover of a missing dir: %d %q", a, src)
	}
	if CacheLine <= 0 || CacheLine > 256 {
		t.Fatalf("CacheLine %d", CacheLine)
	}
}
