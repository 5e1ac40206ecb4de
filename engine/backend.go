package engine

import (
	"fmt"

	"github.com/dwal-project/dwal/engine/fallback"
	"github.com/dwal-project/dwal/engine/uring"
	"github.com/dwal-project/dwal/engine/vfs"
)

// newUring opens the io_uring backend; a seam for tests that must see Auto
// fall back where io_uring cannot be refused for real.
var newUring = func(dir string, opts vfs.Options) (vfs.FS, error) {
	f, err := uring.New(dir, opts)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// openBackend returns the FS that Config asks for, what to report about it,
// and whether the Coordinator owns (and closes) it.
func openBackend(cfg Config) (vfs.FS, BackendInfo, bool, error) {
	opts := vfs.Options{FilePerm: cfg.FilePerm, DirPerm: cfg.DirPerm}
	if cfg.FS != nil {
		return cfg.FS, BackendInfo{Name: cfg.FS.Name(), Reason: "Config.FS"}, false, nil
	}
	switch cfg.Backend {
	case BackendFallback:
		f, err := fallback.New(cfg.Dir, opts)
		if err != nil {
			return nil, BackendInfo{}, false, err
		}
		return f, BackendInfo{Name: "fallback", Reason: "Config.Backend is BackendFallback"}, true, nil
	case BackendUring:
		f, err := newUring(cfg.Dir, opts)
		if err != nil {
			return nil, BackendInfo{}, false, fmt.Errorf("dwal: io_uring backend requested: %w", err)
		}
		return f, BackendInfo{Name: f.Name(), Reason: "Config.Backend is BackendUring"}, true, nil
	}
	u, uerr := newUring(cfg.Dir, opts)
	if uerr == nil {
		return u, BackendInfo{Name: u.Name(), Reason: "auto: io_uring and O_DIRECT work in this directory"}, true, nil
	}
	f, err := fallback.New(cfg.Dir, opts)
	if err != nil {
		return nil, BackendInfo{}, false, err
	}
	return f, BackendInfo{Name: "fallback", Reason: "auto: " + uerr.Error()}, true, nil
}

// pageCache reports whether f (or a backend it wraps, as errorfs does) may
// write through the page cache: true unless it declares direct I/O
// (vfs.DirectIO). An FS that does not say is treated as buffered.
func pageCache(f vfs.FS) bool {
	d, ok := findIface[vfs.DirectIO](f)
	return !ok || !d.DirectIO()
}

// initBlocks reports whether f (or a backend it wraps) wants the blocks of
// prepared segments written once (vfs.BlockIniter).
func initBlocks(f vfs.FS) bool {
	p, ok := findIface[vfs.BlockIniter](f)
	return ok && p.InitBlocks()
}

// findIface finds an optional interface on f or on the backends it wraps.
func findIface[T any](f vfs.FS) (T, bool) {
	for f != nil {
		if t, ok := f.(T); ok {
			return t, true
		}
		u, ok := f.(interface{ Unwrap() vfs.FS })
		if !ok {
			break
		}
		f = u.Unwrap()
	}
	var zero T
	return zero, false
}
