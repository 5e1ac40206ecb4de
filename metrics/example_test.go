package metrics_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/metrics"
)

func ExampleNewCollector() {
	dir, _ := os.MkdirTemp("", "dwal-metrics-*")
	defer os.RemoveAll(dir)
	c, err := engine.Open(engine.DefaultConfig(dir))
	if err != nil {
		panic(err)
	}
	defer c.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(c, metrics.WithConstLabels(prometheus.Labels{"wal": "orders"})))
	// In a server: http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	e, _ := engine.NewSyncEntry(1, []byte("hello"))
	c.Flush([]*engine.PendingEntry{e}, true)

	out, _ := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "dwal_entries_total", "dwal_payload_bytes_total")
	fmt.Print(strings.TrimSpace(string(out)))
	// Output:
	// # HELP dwal_entries_total Entries written successfully.
	// # TYPE dwal_entries_total counter
	// dwal_entries_total{wal="orders"} 1
	// # HELP dwal_payload_bytes_total Entry payload bytes written successfully, as given by callers.
	// # TYPE dwal_payload_bytes_total counter
	// dwal_payload_bytes_total{wal="orders"} 5
}
