//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "flushstall: Linux only (O_DIRECT, pwritev2)")
	os.Exit(2)
}
