// Package local runs ClickHouse servers as herd's own children: the managed
// single server of the demo, tests and single-machine installs (Server), and
// a local cluster of shards and replicas with ZooKeeper (Cluster) that loads
// the shipped deploy/ files. Only this package knows deploy/; the client in
// package clickhouse stands alone.
package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// InstallHint is the command that installs the server this package launches.
const InstallHint = "apt-get update && apt-get install -y clickhouse-server clickhouse-client"

// ErrNoServerBinary is returned when clickhouse-server is neither on PATH nor in /usr/sbin.
var ErrNoServerBinary = errors.New("clickhouse-server not found on PATH or in /usr/sbin; install it with: " + InstallHint)

// Config describes a ClickHouse server that herd runs as its own child
// process, for the demo, tests and single-machine installs.
type Config struct {
	// Dir holds everything: generated config, data, logs, passwords. Required.
	Dir string
	// Binary is the clickhouse-server executable; empty means look on PATH,
	// then /usr/sbin.
	Binary string
	// ReaderDatabases are the only databases the reader user may read.
	// Empty means the published database of clickhouse.DefaultDatabases.
	ReaderDatabases []string
	// StartTimeout bounds the wait for the server to answer; zero means 30 s.
	StartTimeout time.Duration
	// MaxMemoryPerQuery caps one query's memory in bytes; zero means 4 GiB.
	MaxMemoryPerQuery int64
	// HTTPPort and TCPPort fix the ports (a restart that clients must find
	// again); zero picks free ones.
	HTTPPort, TCPPort int
	// Extra is more server configuration, inserted as is (herd generates
	// it: a cluster's remote_servers, macros, ZooKeeper).
	Extra string
	// Log receives start and stop messages.
	Log *slog.Logger
}

// Server is a running managed ClickHouse server.
type Server struct {
	cfg      Config
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	httpPort int
	tcpPort  int
	writer   clickhouse.Config
	reader   clickhouse.Config
	log      *slog.Logger
	dirLock  *os.File
}

// Users of the managed server.
const (
	WriterUser = "herd"
	ReaderUser = "herd_reader"
)

// Start starts clickhouse-server with a configuration generated under
// cfg.Dir, listening on free loopback ports, and waits until it answers. Data
// in cfg.Dir survives restarts. A server left running by a herd that was
// killed is stopped first; a herd still running on the same Dir is an error.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("local clickhouse: Dir is empty")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.MaxMemoryPerQuery == 0 {
		cfg.MaxMemoryPerQuery = 4 << 30
	}
	if len(cfg.ReaderDatabases) == 0 {
		cfg.ReaderDatabases = []string{clickhouse.DefaultDatabases.Pub}
	}
	for _, db := range cfg.ReaderDatabases {
		if _, err := clickhouse.Ident(db); err != nil {
			return nil, fmt.Errorf("local clickhouse: reader database: %w", err)
		}
	}
	bin, err := findServerBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("local clickhouse: %w", err)
	}
	cfg.Dir = dir
	for _, d := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "log")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("local clickhouse: %w", err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	if err := stopOrphan(cfg.Dir, cfg.Log); err != nil {
		return nil, err
	}
	writerPW, readerPW, err := passwords(dir)
	if err != nil {
		return nil, err
	}

	// A free port can be taken between our probe and the server's bind;
	// then the server exits at once and we try other ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		l, err := startOnce(ctx, cfg, bin, writerPW, readerPW)
		if err == nil {
			ok = true
			l.dirLock = lock
			return l, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startOnce(ctx context.Context, cfg Config, bin, writerPW, readerPW string) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, fmt.Errorf("local clickhouse: %w", err)
	}
	if cfg.HTTPPort != 0 {
		ports[0] = cfg.HTTPPort
	}
	if cfg.TCPPort != 0 {
		ports[1] = cfg.TCPPort
	}
	l := &Server{cfg: cfg, httpPort: ports[0], tcpPort: ports[1], exited: make(chan struct{}), log: cfg.Log}
	if err := l.writeConfig(writerPW, readerPW); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(l.httpPort))
	l.writer = clickhouse.Config{Addr: addr, User: WriterUser, Password: writerPW}
	l.reader = clickhouse.Config{Addr: addr, User: ReaderUser, Password: readerPW}

	out, err := os.OpenFile(filepath.Join(cfg.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local clickhouse: %w", err)
	}
	defer out.Close()
	l.cmd = exec.Command(bin, "--config-file="+filepath.Join(cfg.Dir, "config.xml"))
	l.cmd.Dir = cfg.Dir
	l.cmd.Stdout, l.cmd.Stderr = out, out
	l.cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a Ctrl-C at the terminal reaches herd, which
		// stops the server after flushing, instead of killing both at once.
		Setpgid: true,
		// If herd dies without stopping it, the kernel tells the server to go.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := l.cmd.Start(); err != nil {
		return nil, fmt.Errorf("local clickhouse: start %s: %w", bin, err)
	}
	go func() {
		l.exitErr = l.cmd.Wait()
		close(l.exited)
	}()
	if err := os.WriteFile(filepath.Join(cfg.Dir, "server.pid"),
		fmt.Appendf(nil, "%d %d\n", os.Getpid(), l.cmd.Process.Pid), 0o600); err != nil {
		l.kill()
		return nil, fmt.Errorf("local clickhouse: %w", err)
	}
	if err := l.waitReady(ctx); err != nil {
		l.kill()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "endpoint"),
		fmt.Appendf(nil, "%d %d\n", l.httpPort, l.tcpPort), 0o600); err != nil {
		l.kill()
		return nil, fmt.Errorf("local clickhouse: %w", err)
	}
	cfg.Log.Info("local clickhouse started", "dir", cfg.Dir, "http_port", l.httpPort, "pid", l.cmd.Process.Pid)
	return l, nil
}

// Writer is the configuration of the user that may write both databases.
func (l *Server) Writer() clickhouse.Config { return l.writer }

// Reader is the configuration of the read-only user limited to ReaderDatabases.
func (l *Server) Reader() clickhouse.Config { return l.reader }

// HTTPPort and TCPPort are the loopback ports the server listens on.
func (l *Server) HTTPPort() int { return l.httpPort }

// TCPPort is the native-protocol port, for clickhouse-client.
func (l *Server) TCPPort() int { return l.tcpPort }

// Dir is the server's directory.
func (l *Server) Dir() string { return l.cfg.Dir }

// PID is the server process id.
func (l *Server) PID() int { return l.cmd.Process.Pid }

// Exited is closed when the server process has ended, for whatever reason.
func (l *Server) Exited() <-chan struct{} { return l.exited }

// Stop asks the server to shut down and waits for it; if ctx ends first the
// server is killed.
// It releases the directory for the next Start in every case, also when
// the server had already died on its own.
func (l *Server) Stop(ctx context.Context) error {
	var err error
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-ctx.Done():
		l.kill()
		err = fmt.Errorf("local clickhouse: stop: %w; killed", ctx.Err())
	}
	_ = os.Remove(filepath.Join(l.cfg.Dir, "server.pid"))
	_ = os.Remove(filepath.Join(l.cfg.Dir, "endpoint"))
	l.dirLock.Close()
	l.log.Info("local clickhouse stopped", "dir", l.cfg.Dir)
	return err
}

// Running finds a managed server that another herd process runs on dir
// (herd serve, say) and returns its writer and reader configurations, so
// that a second command can use it instead of starting its own.
func Running(dir string) (writer, reader clickhouse.Config, ok bool) {
	lock, err := lockDir(dir)
	if err == nil {
		lock.Close() // nobody holds it: nothing is running
		return writer, reader, false
	}
	data, err := os.ReadFile(filepath.Join(dir, "endpoint"))
	if err != nil {
		return writer, reader, false
	}
	var httpPort, tcpPort int
	if _, err := fmt.Sscan(string(data), &httpPort, &tcpPort); err != nil {
		return writer, reader, false
	}
	wpw, err1 := os.ReadFile(filepath.Join(dir, "writer.password"))
	rpw, err2 := os.ReadFile(filepath.Join(dir, "reader.password"))
	if err1 != nil || err2 != nil {
		return writer, reader, false
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	writer = clickhouse.Config{Addr: addr, User: WriterUser, Password: string(bytes.TrimSpace(wpw))}
	reader = clickhouse.Config{Addr: addr, User: ReaderUser, Password: string(bytes.TrimSpace(rpw))}
	return writer, reader, true
}

// lockDir takes an exclusive flock on dir/owner.lock for as long as the
// returned file stays open. The kernel drops it when its holder dies, however
// it dies, so a held lock always means a live herd.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "owner.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local clickhouse: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("local clickhouse: %s is in use by another running herd", dir)
		}
		return nil, fmt.Errorf("local clickhouse: lock %s: %w", dir, err)
	}
	return f, nil
}

func (l *Server) kill() {
	_ = l.cmd.Process.Kill()
	<-l.exited
}

func (l *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.StartTimeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + l.writer.Addr + "/ping"
	for {
		select {
		case <-l.exited:
			return fmt.Errorf("local clickhouse exited at start (%v): %s", l.exitErr, l.logTail())
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "Ok.") {
				c, err := clickhouse.New(l.writer, nil)
				if err != nil {
					return err
				}
				err = c.Ping(ctx)
				c.Close()
				if err == nil {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local clickhouse did not answer within %v: %s", l.cfg.StartTimeout, l.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l *Server) logTail() string {
	var parts []string
	for _, f := range []string{"stdout.log", "clickhouse-server.err.log"} {
		data, err := os.ReadFile(filepath.Join(l.cfg.Dir, "log", f))
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		parts = append(parts, f+": "+strings.TrimSpace(string(data)))
	}
	if len(parts) == 0 {
		return "no log output"
	}
	return strings.Join(parts, "; ")
}

func findServerBinary(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("clickhouse-server %s: %w; install it with: %s", bin, err, InstallHint)
		}
		return bin, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/clickhouse-server"); err == nil {
		return "/usr/sbin/clickhouse-server", nil
	}
	return "", ErrNoServerBinary
}

// stopOrphan stops the server a previous herd on this directory left behind
// (kill -9 gives herd no time to stop it). The caller holds the directory
// lock, so that herd is gone.
func stopOrphan(dir string, log *slog.Logger) error {
	pidFile := filepath.Join(dir, "server.pid")
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local clickhouse: %w", err)
	}
	var owner, server int
	if _, err := fmt.Sscan(string(data), &owner, &server); err != nil {
		log.Warn("local clickhouse: ignoring unreadable pid file", "file", pidFile)
		return os.Remove(pidFile)
	}
	if alive(server) && strings.Contains(cmdline(server), filepath.Join(dir, "config.xml")) {
		log.Warn("local clickhouse: stopping server left by an earlier run", "pid", server)
		_ = syscall.Kill(server, syscall.SIGTERM)
		deadline := time.Now().Add(15 * time.Second)
		for alive(server) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(server) {
			_ = syscall.Kill(server, syscall.SIGKILL)
			for alive(server) {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return os.Remove(pidFile)
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// A zombie still answers signal 0; its /proc stat state is Z.
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
}

// secretFile returns the password stored in path, creating a random one
// (readable by the owner only) the first time.
// passwords are the writer's and the reader's, kept under dir (made the
// first time).
func passwords(dir string) (writer, reader string, err error) {
	if writer, err = secretFile(filepath.Join(dir, "writer.password")); err != nil {
		return "", "", err
	}
	reader, err = secretFile(filepath.Join(dir, "reader.password"))
	return writer, reader, err
}

func secretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(data)) >= 16 {
		return string(bytes.TrimSpace(data)), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("local clickhouse: password: %w", err)
	}
	pw := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("local clickhouse: write password: %w", err)
	}
	return pw, nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (l *Server) writeConfig(writerPW, readerPW string) error {
	x := xmlEscape
	sum := func(pw string) string {
		h := sha256.Sum256([]byte(pw))
		return hex.EncodeToString(h[:])
	}
	vars := map[string]any{
		"Dir":       x(l.cfg.Dir),
		"HTTPPort":  l.httpPort,
		"TCPPort":   l.tcpPort,
		"WriterSHA": sum(writerPW),
		"ReaderSHA": sum(readerPW),
		"ReaderDBs": l.cfg.ReaderDatabases,
		"MaxMemory": l.cfg.MaxMemoryPerQuery,
		"Writer":    WriterUser,
		"Reader":    ReaderUser,
		"Extra":     l.cfg.Extra,
	}
	for name, tmpl := range map[string]*template.Template{"config.xml": configXML, "users.xml": usersXML} {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, vars); err != nil {
			return fmt.Errorf("local clickhouse: render %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(l.cfg.Dir, name), buf.Bytes(), 0o600); err != nil {
			return fmt.Errorf("local clickhouse: write %s: %w", name, err)
		}
	}
	return nil
}

// xmlEscape makes s safe as XML text.
func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// The server listens on loopback only. Caches are sized for a laptop, not the
// 8 GiB and 5 GiB defaults. The timezone is UTC so that buckets mean the same
// everywhere.
var configXML = template.Must(template.New("config").Parse(`<?xml version="1.0"?>
<!-- Generated by herd at every start; edits are overwritten. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{{.Dir}}/log/clickhouse-server.log</log>
        <errorlog>{{.Dir}}/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{{.HTTPPort}}</http_port>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <path>{{.Dir}}/data/</path>
    <tmp_path>{{.Dir}}/data/tmp/</tmp_path>
    <user_files_path>{{.Dir}}/data/user_files/</user_files_path>
    <format_schema_path>{{.Dir}}/data/format_schemas/</format_schema_path>
    <users_config>{{.Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <keep_alive_timeout>3</keep_alive_timeout>{{.Extra}}
</yandex>
`))

// Two users, both loopback only. The writer may do anything; the reader is
// readonly=1 (reads only: no writes, no settings of its own, no table
// functions such as url()) and allow_databases makes ClickHouse refuse it
// everything but the published database: a grant, not a convention.
var usersXML = template.Must(template.New("users").Parse(`<?xml version="1.0"?>
<!-- Generated by herd at every start; edits are overwritten. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>{{.MaxMemory}}</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
        <herd_reader>
            <readonly>1</readonly>
            <max_memory_usage>1000000000</max_memory_usage>
            <max_execution_time>20</max_execution_time>
            <max_rows_to_read>50000000</max_rows_to_read>
            <max_result_rows>200000</max_result_rows>
            <result_overflow_mode>throw</result_overflow_mode>
        </herd_reader>
    </profiles>
    <users>
        <{{.Writer}}>
            <password_sha256_hex>{{.WriterSHA}}</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{{.Writer}}>
        <{{.Reader}}>
            <password_sha256_hex>{{.ReaderSHA}}</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>herd_reader</profile>
            <quota>default</quota>
            <allow_databases>{{range .ReaderDBs}}
                <database>{{.}}</database>{{end}}
            </allow_databases>
        </{{.Reader}}>
    </users>
    <quotas>
        <default>
            <interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
        </default>
    </quotas>
</yandex>
`))
