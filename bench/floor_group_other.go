//go:build !linux

package bench

import "errors"

type floorGroupSystem struct{}

// FloorGroupSystem returns the group-commit floor; it needs Linux
// (O_DIRECT), so elsewhere it only says why it does not run.
func FloorGroupSystem() System { return floorGroupSystem{} }

func (floorGroupSystem) Name() string { return "floor-group" }

func (floorGroupSystem) Supports(string, int) (bool, string) {
	return false, "the floors need Linux (O_DIRECT)"
}

func (floorGroupSystem) Open(Config) (Log, error) {
	return nil, errors.New("bench: floor-group needs Linux")
}
