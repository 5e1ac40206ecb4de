//go:build !linux

package peers

import (
	"errors"

	"github.com/dwal-project/dwal/engine/vfs"
)

var errLinuxOnly = errors.New("the scale workload's O_DIRECT probes run on Linux only")

func newUringFS(string) (vfs.FS, error)      { return nil, errLinuxOnly }
func dropCaches() error                      { return errLinuxOnly }
func rawRead(string) (int64, float64, error) { return 0, 0, errLinuxOnly }
