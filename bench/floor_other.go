//go:build !linux

package bench

import (
	"errors"
	"os"
)

type floorSystem struct{ name string }

// FloorSystems returns the floors; they need Linux (O_DIRECT, pwritev2), so
// elsewhere they only say why they do not run.
func FloorSystems() []System {
	return []System{&floorSystem{"floor-pwrite"}, &floorSystem{"floor-pwritev2"}}
}

func (s *floorSystem) Name() string { return s.name }

func (s *floorSystem) Supports(string, int) (bool, string) {
	return false, "the floors need Linux (O_DIRECT, pwritev2 RWF_DSYNC)"
}

func (s *floorSystem) Open(Config) (Log, error) { return nil, errors.New("bench: floors need Linux") }

func dropCache(string) error { return nil }

const dropCacheNote = "page cache not dropped before replay (Linux only)"

func fdatasync(f *os.File) error { return f.Sync() }

// partitionFloors: the floors need Linux.
func partitionFloors() []System { return nil }
