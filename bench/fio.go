package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FioLimit is what scripts/fio-limit.sh prints: the device limit on the
// measured directory's disk (MB = 10^6 bytes, latencies in µs).
type FioLimit struct {
	Version    string  `json:"fio_version"`
	Engine     string  `json:"engine"`
	EngineNote string  `json:"engine_note,omitempty"`
	Dir        string  `json:"dir"`
	SizeMiB    float64 `json:"size_mib"`
	RuntimeS   float64 `json:"runtime_s"`
	Write4K    struct {
		IOPS       float64 `json:"iops"`
		MeanUS     float64 `json:"mean_us"`
		WriteP50US float64 `json:"write_p50_us"`
		WriteP99US float64 `json:"write_p99_us"`
		SyncP50US  float64 `json:"sync_p50_us"`
		SyncP99US  float64 `json:"sync_p99_us"`
		P50US      float64 `json:"p50_us"`
		P99US      float64 `json:"p99_us"`
	} `json:"write_4k_fdatasync_qd1"`
	Write1M struct {
		MBPerS float64 `json:"mb_s"`
		IOPS   float64 `json:"iops"`
	} `json:"write_1m_fdatasync_qd1"`
	Read1M struct {
		MBPerS float64 `json:"mb_s"`
		IOPS   float64 `json:"iops"`
	} `json:"read_1m_seq_qd1"`
	Read1MQ16 struct {
		MBPerS float64 `json:"mb_s"`
		IOPS   float64 `json:"iops"`
	} `json:"read_1m_seq_qd16"`
}

// findUp returns the first of rel found in the working directory or one
// of its parents.
func findUp(rel string) (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// runFio runs the fio script on dir.
func runFio(script, dir string, runtime time.Duration) (*FioLimit, error) {
	if script == "" {
		p, ok := findUp(filepath.Join("scripts", "fio-limit.sh"))
		if !ok {
			return nil, errors.New("scripts/fio-limit.sh not found from the working directory (pass --fio-script)")
		}
		script = p
	}
	secs := max(int(math.Ceil(runtime.Seconds())), 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*4*time.Second+5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, dir, strconv.Itoa(secs))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", script, err, lastLine(errb.String()))
	}
	var f FioLimit
	if err := json.Unmarshal(out.Bytes(), &f); err != nil {
		return nil, fmt.Errorf("%s: output: %v", script, err)
	}
	return &f, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
