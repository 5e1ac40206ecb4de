// Package uring is dwal's Linux backend: segment files opened with O_DIRECT,
// preallocated with fallocate, written and read through an io_uring of our
// own, with each durable write submitted as one WRITE carrying RWF_DSYNC
// (vfs.DSync, the engine's default) or as WRITE linked (IOSQE_IO_LINK) to
// FSYNC(IORING_FSYNC_DATASYNC) (vfs.Fdatasync).
//
// Everything off the write path (directory operations, List, ReadFile,
// WriteFile, Lock, SyncDir, Remove, Rename) is package osdir's, which the
// fallback backend uses too; neither backend imports the other.
//
// # Ring
//
// One ring per FS, set up with io_uring_setup and mapped with x/sys/unix; the
// iouring-go syscall subpackage supplies setup/enter/register and the SQE/CQE
// layouts. Its root package is not used: it does not link on Go >= 1.23
// without a special linker flag (a //go:linkname into syscall) that every
// program importing dwal would then need; its linked requests keep
// IOSQE_IO_HARDLINK set, so a sync would still run after a failed write;
// and each request costs allocations and an eventfd + epoll + channel hop.
// 64 preallocated request slots bound what is in flight; a caller beyond
// that blocks. No allocation per operation, no reaper
// goroutine, no eventfd or epoll: the caller whose operation is first in
// flight reaps for everybody, waiting in the same io_uring_enter that submits
// its SQEs, and hands the reaping to another waiter when its own operation is
// done (see ring).
//
// # Durability
//
// Fdatasync: WRITE linked to FDATASYNC in one submission; a failed or short
// write cancels the sync (-ECANCELED) and WriteAt returns the write's error
// (a short write wraps vfs.ErrShortWrite). DSync: one WRITE with
// RWF_DSYNC (FUA where the device has it). Sync errors are final: never
// retried.
//
// # Performance
//
// NB: every FSYNC request runs on an io-wq worker thread (the kernel never
// runs it inline), so a linked chain pays one more thread hop than a
// synchronous pwrite+fdatasync. An O_DIRECT RWF_DSYNC write finishes its
// cache flush in the kernel's completion work instead, and is the faster
// of the two wherever measured here (BenchmarkSyncWrite4K, 4 KiB into a
// pre-zeroed file, 2 vCPUs, virtio disk without FUA, one run per file
// system): p50 RWF_DSYNC / linked / pwrite+fdatasync 173 / 220 / 197 µs
// on journaled ext4, 163 / 225 / 158 µs on xfs, 91 / 103 / 84 µs on ext4
// without a journal; four writers: 13,200-13,700/s vs 10,800-12,600/s
// linked and 12,700-13,300/s for four threads in pwrite+fdatasync on
// journaled ext4. What the ring buys is several durable writes in flight
// from goroutines that do not each hold an OS thread.
//
// # Availability
//
// New and Probe return an error wrapping vfs.ErrUnsupported that names the
// cause when io_uring or O_DIRECT cannot be used in a directory: seccomp or
// kernel.io_uring_disabled (EPERM), a kernel before 5.6 (ENOSYS, or missing
// opcodes), O_DIRECT refused (EINVAL on ramfs, tmpfs before Linux 6.6, some
// FUSE and overlay mounts). On other systems they always do.
package uring

import "github.com/dwal-project/dwal/engine/vfs"

var _ vfs.FS = (*FS)(nil)

// Name implements vfs.FS: "io_uring".
func (f *FS) Name() string { return "io_uring" }
