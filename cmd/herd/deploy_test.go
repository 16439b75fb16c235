package main

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/herd-analytics/herd/deploy"
)

// Every systemd unit herd ships runs a herd command, and every HERD_
// variable it sets, itself or through the environment file it reads, is a
// flag of that command (parseFlags ignores unknown ones: a misspelt
// variable would silently do nothing).
func TestSystemdUnitsSetRealFlags(t *testing.T) {
	units, err := fs.Glob(deploy.Files, "systemd/*.service")
	if err != nil || len(units) < 4 {
		t.Fatalf("units %v: %v", units, err)
	}
	envFile := func(name string) []string {
		data, err := deploy.Files.ReadFile("systemd/" + name)
		if err != nil {
			return nil // an optional EnvironmentFile=- the operator writes
		}
		return varLines(string(data))
	}
	for _, unit := range units {
		data, err := deploy.Files.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		var command string
		var vars []string
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "ExecStart=/usr/local/bin/herd "):
				command = strings.Fields(strings.TrimPrefix(line, "ExecStart=/usr/local/bin/herd "))[0]
			case strings.HasPrefix(line, "Environment="):
				vars = append(vars, varLines(strings.TrimPrefix(line, "Environment="))...)
			case strings.HasPrefix(line, "EnvironmentFile="):
				vars = append(vars, envFile(path.Base(strings.TrimPrefix(strings.TrimPrefix(line, "EnvironmentFile="), "-")))...)
			}
		}
		if command == "" {
			t.Errorf("%s runs no herd command", unit)
			continue
		}
		var out, errb bytes.Buffer
		_ = run(context.Background(), []string{command, "-h"}, &out, &errb)
		for _, v := range vars {
			flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(v, "HERD_")), "_", "-")
			if help := errb.String(); !strings.Contains(help, "\n  -"+flag+" ") && !strings.Contains(help, "\n  -"+flag+"\n") {
				t.Errorf("%s: %s is not a flag of herd %s", unit, v, command)
			}
		}
	}
}

// varLines returns the HERD_ names assigned in KEY=value lines.
func varLines(text string) []string {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if name, _, ok := strings.Cut(line, "="); ok && strings.HasPrefix(name, "HERD_") {
			names = append(names, name)
		}
	}
	return names
}
