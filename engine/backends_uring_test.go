package engine

import "testing"

func uringBackends(t *testing.T) []backend { return nil }
