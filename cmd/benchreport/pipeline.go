package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchPipeline runs the ingest package's Go benchmark of one event's way
// through the edge (decode, consent, desensitize, pseudonymize, and per
// 1,000-row batch the Arrow record and the Native block) on one core, a few
// times, and reports the spread.
func benchPipeline(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "XXX", "-bench", "BenchmarkPipeline", "-benchtime", "3s", "-count", "5", "-cpu", "1", "./ingest/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pipeline benchmark: %w\n%s", err, out.String())
	}
	var ns, allocs, bytesPer []float64
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "BenchmarkPipeline") {
			continue
		}
		for i := 1; i < len(f); i++ {
			v, err := strconv.ParseFloat(f[i-1], 64)
			if err != nil {
				continue
			}
			switch f[i] {
			case "ns/event":
				ns = append(ns, v)
			case "allocs/op":
				allocs = append(allocs, v/20)
			case "B/op":
				bytesPer = append(bytesPer, v/20)
			}
		}
	}
	if len(ns) == 0 {
		return "", fmt.Errorf("pipeline benchmark printed no ns/event:\n%s", out.String())
	}
	return fmt.Sprintf("Measured %s, one core (`-cpu 1`), %d runs of 3 s: **%.1f µs per event** median (%.1f–%.1f), %.1f allocations and %.0f bytes allocated per event.\n",
		time.Now().UTC().Format("2006-01-02"), len(ns), median(ns)/1000, slices.Min(ns)/1000, slices.Max(ns)/1000, median(allocs), median(bytesPer)), nil
}
