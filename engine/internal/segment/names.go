package segment

import (
	"fmt"
	"strconv"
	"strings"
)

// File names in a log directory. NB: never change these.
const (
	Suffix         = ".log"        // NNNNNN.log: a segment
	MetaSuffix     = ".log.meta"   // NNNNNN.log.meta: a sealed segment's Meta
	BrokenSuffix   = ".log.broken" // NNNNNN.log.broken: bytes recovery cut off, kept for the operator
	FenceSuffix    = ".log.end"    // NNNNNN.log.end: where the log ends after a failed rollback
	TmpSuffix      = ".tmp"        // a file being written, renamed when complete
	PreparedPrefix = "prepared-"   // prepared-N.tmp: a segment being prepared
	RecyclePrefix  = "recycle-"    // recycle-N.tmp: a retired segment kept for reuse
	LockName       = "LOCK"        // the directory's lock
)

// Name is segment id's file name ("000012.log").
func Name(id uint64) string { return fmt.Sprintf("%06d%s", id, Suffix) }

// MetaName is segment id's .meta file name.
func MetaName(id uint64) string { return fmt.Sprintf("%06d%s", id, MetaSuffix) }

// BrokenName is the name of the bytes recovery cut off segment id.
func BrokenName(id uint64) string { return fmt.Sprintf("%06d%s", id, BrokenSuffix) }

// FenceName is segment id's end-of-log record.
func FenceName(id uint64) string { return fmt.Sprintf("%06d%s", id, FenceSuffix) }

// PreparedName is the temporary name of the n-th segment being prepared.
func PreparedName(n uint64) string { return fmt.Sprintf("%s%d%s", PreparedPrefix, n, TmpSuffix) }

// RecycleName is the temporary name of a retired segment kept for reuse.
func RecycleName(id uint64) string { return fmt.Sprintf("%s%d%s", RecyclePrefix, id, TmpSuffix) }

// ParseTempID is N of a prepared or retired segment file's temporary name
// (PreparedName, RecycleName).
func ParseTempID(name string) (uint64, bool) {
	for _, p := range []string{PreparedPrefix, RecyclePrefix} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			return ParseID(rest, TmpSuffix)
		}
	}
	return 0, false
}

// ParseID parses the digits of name before suffix ("000012.log" → 12); any
// number of digits.
func ParseID(name, suffix string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, suffix)
	if !ok || s == "" {
		return 0, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil
}

// IsLeftover reports whether name is a temporary file of interrupted work
// (a prepared or recycled segment, a .meta, index, end-of-log or log-state
// record being written): a live writer's, or one that recovery removes.
func IsLeftover(name string) bool {
	return name == StateTmpName || strings.HasSuffix(name, TmpSuffix) &&
		(strings.HasPrefix(name, PreparedPrefix) || strings.HasPrefix(name, RecyclePrefix) ||
			strings.HasSuffix(name, MetaSuffix+TmpSuffix) || strings.HasSuffix(name, FenceSuffix+TmpSuffix))
}
