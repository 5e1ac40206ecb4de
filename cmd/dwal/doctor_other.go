//go:build !linux

package main

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// What doctor reports only on Linux; elsewhere dwal runs the fallback
// backend and these say so.
var (
	errPerm  = errors.New("EPERM")
	errNoSys = errors.New("ENOSYS")
)

var errLinuxOnly = fmt.Errorf("not measured on %s (Linux only)", runtime.GOOS)

func kernelVersion() string { return runtime.GOOS + " " + runtime.GOARCH }

func uringAvailable() (int, error) {
	return -1, fmt.Errorf("io_uring is Linux only (GOOS=%s)", runtime.GOOS)
}

func fileSystem(dir string) (fsInfo, error) { return fsInfo{}, errLinuxOnly }

func probeDirect(dir string, bs int) error { return errLinuxOnly }

func deviceInfo(dir string) string { return "" }

func measureSync(dir string, total time.Duration, bs int, direct bool) []latency {
	return []latency{{name: latInit, err: errLinuxOnly}}
}
