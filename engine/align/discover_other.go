//go:build !linux

package align

func discover(string) (int, Source) { return Default, SourceDefault }
