package errorfs

import (
	"fmt"

	"github.com/dwal-project/dwal/engine/vfs"
)

// OpKind names one operation of vfs.FS or vfs.File that can fail.
type OpKind uint8

// The kinds, one per fallible method of vfs.FS and vfs.File, plus the sync
// half of a WriteAt with vfs.Fdatasync or vfs.DSync and the Close of the
// lock. Name and Alignment cannot fail and have none.
const (
	OpCreate    OpKind = iota // FS.Create
	OpOpen                    // FS.Open
	OpRemove                  // FS.Remove
	OpRename                  // FS.Rename
	OpSyncDir                 // FS.SyncDir
	OpList                    // FS.List
	OpReadFile                // FS.ReadFile
	OpWriteFile               // FS.WriteFile
	OpLock                    // FS.Lock
	OpUnlock                  // Close of the io.Closer FS.Lock returned
	OpFSClose                 // FS.Close
	OpWrite                   // File.WriteAt: the write itself
	OpWriteSync               // File.WriteAt: the linked sync, asked only when the write succeeds
	OpRead                    // File.ReadAt
	OpSync                    // File.Sync
	OpTruncate                // File.Truncate
	OpSize                    // File.Size
	OpClose                   // File.Close
	numKinds
)

var kindNames = [numKinds]string{
	OpCreate:    "create",
	OpOpen:      "open",
	OpRemove:    "remove",
	OpRename:    "rename",
	OpSyncDir:   "sync-dir",
	OpList:      "list",
	OpReadFile:  "read-file",
	OpWriteFile: "write-file",
	OpLock:      "lock",
	OpUnlock:    "unlock",
	OpFSClose:   "fs-close",
	OpWrite:     "write",
	OpWriteSync: "write-sync",
	OpRead:      "read",
	OpSync:      "sync",
	OpTruncate:  "truncate",
	OpSize:      "size",
	OpClose:     "close",
}

func (k OpKind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", k)
}

// Kinds returns every OpKind, in order.
func Kinds() []OpKind {
	out := make([]OpKind, numKinds)
	for i := range out {
		out[i] = OpKind(i)
	}
	return out
}

// Mutates reports whether an op of kind k changes the file system (so an
// injected failure of it is a write fault, not a read fault). Closing ops
// (close, unlock, fs-close) do not count as mutations.
func (k OpKind) Mutates() bool {
	switch k {
	case OpCreate, OpRemove, OpRename, OpSyncDir, OpWriteFile, OpLock,
		OpWrite, OpWriteSync, OpSync, OpTruncate:
		return true
	case OpOpen, OpList, OpReadFile, OpRead, OpSize,
		OpUnlock, OpFSClose, OpClose:
		return false
	}
	panic(fmt.Sprintf("errorfs: unknown op kind %d", k))
}

// MutatingKinds returns the kinds whose ops change the file system.
func MutatingKinds() []OpKind {
	var out []OpKind
	for _, k := range Kinds() {
		if k.Mutates() {
			out = append(out, k)
		}
	}
	return out
}

// Op is one operation the FS is about to run, as an Injector sees it.
type Op struct {
	Kind OpKind
	// Name is the file's base name: the name it was created or opened with
	// for File ops, the old name for Rename, the LOCK file's name for Lock
	// and Unlock, "" for SyncDir, List and FS.Close.
	Name string
	// NewName is Rename's new name ("" otherwise).
	NewName string
	// Offset is the offset of a write or read, the size of a Create or
	// Truncate, 0 otherwise.
	Offset int64
	// Len is the byte count of a write, read or WriteFile, 0 otherwise.
	Len int
	// Mode is the sync mode of a write (NoSync otherwise).
	Mode vfs.SyncMode
}

func (op Op) String() string {
	switch op.Kind {
	case OpRename:
		return fmt.Sprintf("rename %s -> %s", op.Name, op.NewName)
	case OpWrite, OpWriteSync:
		return fmt.Sprintf("%s %s [%d, %d) %s", op.Kind, op.Name, op.Offset, op.Offset+int64(op.Len), op.Mode)
	case OpRead:
		return fmt.Sprintf("read %s [%d, %d)", op.Name, op.Offset, op.Offset+int64(op.Len))
	case OpCreate, OpTruncate:
		return fmt.Sprintf("%s %s size %d", op.Kind, op.Name, op.Offset)
	}
	if op.Name == "" {
		return op.Kind.String()
	}
	return op.Kind.String() + " " + op.Name
}
