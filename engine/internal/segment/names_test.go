package segment

import "testing"

// ParseTempID reads N back from the names PreparedName and RecycleName
// make, and nothing else.
func TestParseTempID(t *testing.T) {
	for name, want := range map[string]uint64{PreparedName(7): 7, RecycleName(123456789): 123456789} {
		if id, ok := ParseTempID(name); !ok || id != want {
			t.Errorf("ParseTempID(%q) = %d, %v; want %d", name, id, ok, want)
		}
	}
	for _, name := range []string{"prepared-.tmp", "prepared-x1.tmp", "recycle-1.log", "000001.log", "prepared-1.tmp.tmp", "1.tmp"} {
		if id, ok := ParseTempID(name); ok {
			t.Errorf("ParseTempID(%q) = %d, true; want false", name, id)
		}
	}
}
