package local_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
)

func TestLocalRestartKeepsData(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	l := startLocal(t, dir)
	mustExec(t, l.Writer(), "CREATE DATABASE keep")
	mustExec(t, l.Writer(), "CREATE TABLE keep.t (x UInt32) ENGINE = MergeTree() ORDER BY x")
	mustExec(t, l.Writer(), "INSERT INTO keep.t SELECT number FROM system.numbers LIMIT 1000")
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Exited():
	default:
		t.Fatal("Stop returned before the server exited")
	}

	l2 := startLocal(t, dir)
	if got := mustExec(t, l2.Writer(), "SELECT count(), sum(x) FROM keep.t"); got != "1000\t499500\n" {
		t.Fatalf("after restart: %q", got)
	}
	// Passwords persist, in files only the owner can read.
	if l2.Writer().Password != l.Writer().Password {
		t.Fatal("writer password changed across restarts")
	}
	for _, f := range []string{"writer.password", "reader.password", "users.xml"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if got := mustExec(t, l2.Writer(), "SELECT count() FROM system.settings WHERE name = 'readonly'"); got != "1\n" {
		t.Fatalf("system.settings: %q", got)
	}
}

func TestLocalListensOnLoopbackOnly(t *testing.T) {
	chtest.Servers(t)
	l := startLocal(t, t.TempDir())
	data, err := os.ReadFile(filepath.Join(l.Dir(), "config.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "<listen_host>127.0.0.1</listen_host>") || strings.Contains(string(data), "0.0.0.0") || strings.Contains(string(data), "::<") {
		t.Fatalf("config listens beyond loopback:\n%s", data)
	}
	// The kernel agrees: every socket of the server is bound to 127.0.0.1.
	for _, port := range []int{l.HTTPPort(), l.TCPPort()} {
		if addr := listenAddr(t, port); addr != "0100007F" {
			t.Fatalf("port %d bound to %s, want 127.0.0.1", port, addr)
		}
	}
}

// listenAddr returns the hex IPv4 address a listening socket on port is bound to.
func listenAddr(t *testing.T, port int) string {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	want := fmt.Sprintf(":%04X", port)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 3 && fields[3] == "0A" && strings.HasSuffix(fields[1], want) {
			return strings.TrimSuffix(fields[1], want)
		}
	}
	t.Fatalf("no listening socket on port %d", port)
	return ""
}

func TestLocalSurvivesServerKill9(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	l := startLocal(t, dir)
	mustExec(t, l.Writer(), "CREATE DATABASE k")
	mustExec(t, l.Writer(), "CREATE TABLE k.t (x UInt32) ENGINE = MergeTree() ORDER BY x")
	mustExec(t, l.Writer(), "INSERT INTO k.t SELECT number FROM system.numbers LIMIT 10")
	if err := syscall.Kill(l.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-l.Exited()
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	l2 := startLocal(t, dir)
	if got := mustExec(t, l2.Writer(), "SELECT count() FROM k.t"); got != "10\n" {
		t.Fatalf("after kill -9 and restart: %q", got)
	}
}

// herd itself killed with SIGKILL: its server must not outlive it for long,
// and the next start on the same directory must work.
func TestLocalSurvivesOwnerKill9(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	cmd := helper(t, "local", "HERD_TEST_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var serverPID int
	var url string
	if _, err := fmt.Sscanf(line, "ready %d %s", &serverPID, &url); err != nil {
		t.Fatalf("helper said %q", line)
	}
	cfg, err := clickhouse.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, cfg, "CREATE DATABASE o")
	mustExec(t, cfg, "CREATE TABLE o.t (x UInt32) ENGINE = MergeTree() ORDER BY x")
	mustExec(t, cfg, "INSERT INTO o.t VALUES (7)")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	l := startLocal(t, dir)
	if got := mustExec(t, l.Writer(), "SELECT sum(x) FROM o.t"); got != "7\n" {
		t.Fatalf("after owner kill -9: %q", got)
	}
	// The old server went when its owner did (Pdeathsig) or when the new
	// start found it (pid file); either way it is no longer running.
	chtest.WaitFor(t, 20*time.Second, func() bool {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", serverPID))
		return err != nil || len(data) == 0 // gone, or a zombie awaiting its reaper
	})
}

func TestLocalRefusesSharedDir(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	startLocal(t, dir)
	_, err := local.Start(context.Background(), local.Config{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use by another running herd") {
		t.Fatalf("second server on one directory: got %v", err)
	}
}

// An orphan server whose herd is gone (the pid file says so, no one holds
// the directory lock) is stopped before a new one starts on the same data.
func TestLocalStopsOrphanServer(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	l := startLocal(t, dir)
	mustExec(t, l.Writer(), "CREATE DATABASE orphan")
	// Forget l without stopping it, as a herd killed by SIGKILL would, but
	// keep the process around: Pdeathsig only fires when this process dies.
	oldPID := l.PID()
	if err := l.ReleaseDirForTest(); err != nil {
		t.Fatal(err)
	}
	l2 := startLocal(t, dir)
	<-l.Exited()
	if l2.PID() == oldPID {
		t.Fatal("same pid")
	}
	if got := mustExec(t, l2.Writer(), "SELECT count() FROM system.databases WHERE name = 'orphan'"); got != "1\n" {
		t.Fatalf("data lost: %q", got)
	}
}

func TestLocalMissingBinarySaysHowToInstall(t *testing.T) {
	_, err := local.Start(context.Background(), local.Config{
		Dir: t.TempDir(), Binary: "/nonexistent/clickhouse-server", StartTimeout: time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), local.InstallHint) {
		t.Fatalf("got %v, want the install command", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = local.Start(context.Background(), local.Config{Dir: t.TempDir()})
	if _, statErr := os.Stat("/usr/sbin/clickhouse-server"); statErr != nil && !errors.Is(err, local.ErrNoServerBinary) {
		t.Fatalf("got %v, want ErrNoServerBinary", err)
	}
}

// The managed server's reader runs under the dashboard's limits too.
func TestLocalReaderLimits(t *testing.T) {
	chtest.Servers(t)
	l := startLocal(t, t.TempDir())
	r, err := clickhouse.New(l.Reader(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	readerLimits(t, r)
}
