package align

// Source says where an alignment came from.
type Source string

const (
	SourceStatx   Source = "statx STATX_DIOALIGN"
	SourceBlock   Source = "logical block size"
	SourceDefault Source = "default"
)

// Discover returns the Direct I/O alignment for files in dir: the larger of
// the offset and memory alignments that statx reports for a probe file (its
// STATX_DIOALIGN fields), else the device's logical block size, else
// Default; never less than Default, so every segment is written with at
// least 4 KiB alignment and opens on every backend.
func Discover(dir string) (int, Source) {
	a, src := discover(dir)
	if a < Default {
		a = Default
	}
	return a, src
}
