package engine

import (
	"fmt"
	"os"
)

// ProbeBackend says which backend Open with BackendAuto would pick for dir,
// and why, by running the same choice Open runs (io_uring's self-test: a
// ring, its opcodes, an O_DIRECT write read back through it)
// and closing what it opened. It writes and removes a probe file in dir,
// which must exist; it takes no lock and touches no dwal file.
func ProbeBackend(dir string) (BackendInfo, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return BackendInfo{}, fmt.Errorf("dwal: %w", err)
	}
	if !st.IsDir() {
		return BackendInfo{}, fmt.Errorf("dwal: %s is not a directory", dir)
	}
	cfg, err := Config{Dir: dir, Backend: BackendAuto}.withDefaults()
	if err != nil {
		return BackendInfo{}, err
	}
	fsys, info, own, err := openBackend(cfg)
	if err != nil {
		return BackendInfo{}, err
	}
	if own {
		fsys.Close()
	}
	return info, nil
}
