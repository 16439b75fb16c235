package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herd-analytics/herd/deploy"
)

// ZooKeeperInstallHint is how a machine gets ZooKeeper.
const ZooKeeperInstallHint = "apt-get update && apt-get install -y zookeeper"

// zooKeeperClasspath is Debian's zookeeper package: its jar names every
// library it needs in its manifest.
const zooKeeperClasspath = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"

// ZooKeeper is a standalone ZooKeeper server that herd runs as its child
// process: the coordination service of a local ClickHouse cluster
// (replication, ON CLUSTER DDL).
type ZooKeeper struct {
	Port   int
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartZooKeeper starts ZooKeeper on a free loopback port with its data in
// dir and waits until it answers.
func StartZooKeeper(ctx context.Context, dir string) (*ZooKeeper, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("zookeeper: java not found (%s): %w", ZooKeeperInstallHint, err)
	}
	if _, err := os.Stat("/usr/share/java/zookeeper.jar"); err != nil {
		return nil, fmt.Errorf("zookeeper: /usr/share/java/zookeeper.jar missing (%s): %w", ZooKeeperInstallHint, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("zookeeper: %w", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: %w", err)
	}
	out, err := os.OpenFile(filepath.Join(dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: %w", err)
	}
	defer out.Close()
	z := &ZooKeeper{Port: ports[0], dir: dir, exited: make(chan struct{})}
	z.cmd = exec.Command(java, "-Xmx256m", "-cp", zooKeeperClasspath,
		"-Dzookeeper.admin.enableServer=false", "-Dzookeeper.4lw.commands.whitelist=ruok,srvr",
		"-Dzookeeper.clientPortAddress=127.0.0.1",
		"org.apache.zookeeper.server.ZooKeeperServerMain", strconv.Itoa(z.Port), filepath.Join(dir, "data"))
	z.cmd.Stdout, z.cmd.Stderr = out, out
	z.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := z.cmd.Start(); err != nil {
		return nil, fmt.Errorf("zookeeper: start: %w", err)
	}
	go func() {
		_ = z.cmd.Wait()
		close(z.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if z.ruok() {
			return z, nil
		}
		select {
		case <-z.exited:
			return nil, fmt.Errorf("zookeeper exited at start (log: %s)", filepath.Join(dir, "zookeeper.log"))
		case <-ctx.Done():
			z.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			z.Stop()
			return nil, errors.New("zookeeper: no answer within 60 s")
		}
	}
}

// ruok reports whether ZooKeeper serves requests: its four-letter "srvr"
// names the server's mode only then. ("ruok" answers as soon as the port
// is open, before sessions are accepted; ClickHouse 18.16 crashes in its
// DDL worker when its first session is refused.)
func (z *ZooKeeper) ruok() bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(z.Port)), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	out, _ := io.ReadAll(io.LimitReader(c, 4096))
	return bytes.Contains(out, []byte("Mode: standalone"))
}

// PID is the ZooKeeper process (tests stop and kill it).
func (z *ZooKeeper) PID() int { return z.cmd.Process.Pid }

// Stop ends ZooKeeper and waits for it.
func (z *ZooKeeper) Stop() {
	_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-z.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
		<-z.exited
	}
}

// ClusterName is the cluster's name in deploy/clickhouse/cluster.
const ClusterName = "herd"

// ClusterConfig describes a local ClickHouse cluster: shards × replicas
// clickhouse-server processes on loopback and one ZooKeeper.
type ClusterConfig struct {
	// Dir holds ZooKeeper's and every server's directory. Required.
	Dir string
	// Shards and Replicas: 2 and 2, the shape of the files in
	// deploy/clickhouse/cluster the servers run on.
	Shards, Replicas int
	// ReaderDatabases are what the reader user may read on every node.
	ReaderDatabases []string
	Log             *slog.Logger
}

// Cluster is a running local cluster.
type Cluster struct {
	Name string
	ZK   *ZooKeeper
	// Nodes are the servers by shard, then replica.
	Nodes [][]*Server
	// configs start each node again (Restart).
	configs [][]Config
}

// node is one replica's server configuration: where it sits in the
// cluster, and its ports (all fixed before any starts, since every
// server's remote_servers names every other).
type node struct {
	Shard, Replica         int
	HTTP, TCP, Interserver int
	Dir                    string
}

// StartCluster starts ZooKeeper and every server of the cluster. All
// servers share the writer's and reader's passwords (Distributed queries
// log in to the other shards as the writer).
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Shards < 1 || cfg.Replicas < 1 {
		return nil, errors.New("local cluster: at least one shard and one replica")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	zk, err := StartZooKeeper(ctx, filepath.Join(dir, "zookeeper"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: ClusterName, ZK: zk}
	ok := false
	defer func() {
		if !ok {
			c.Stop(context.Background())
		}
	}()
	writerPW, readerPW, err := passwords(dir)
	if err != nil {
		return nil, err
	}
	n := cfg.Shards * cfg.Replicas
	ports, err := freePorts(3 * n)
	if err != nil {
		return nil, err
	}
	var nodes [][]node
	for s := range cfg.Shards {
		var row []node
		for r := range cfg.Replicas {
			i := s*cfg.Replicas + r
			row = append(row, node{Shard: s + 1, Replica: r + 1, HTTP: ports[3*i], TCP: ports[3*i+1], Interserver: ports[3*i+2],
				Dir: filepath.Join(dir, fmt.Sprintf("s%dr%d", s+1, r+1))})
		}
		nodes = append(nodes, row)
	}
	for _, row := range nodes {
		c.Nodes = append(c.Nodes, nil)
		for _, nd := range row {
			if err := os.MkdirAll(nd.Dir, 0o700); err != nil {
				return nil, err
			}
			for name, pw := range map[string]string{"writer.password": writerPW, "reader.password": readerPW} {
				if err := os.WriteFile(filepath.Join(nd.Dir, name), []byte(pw+"\n"), 0o600); err != nil {
					return nil, err
				}
			}
			if err := writeClusterConfig(nd, nodes, zk.Port, writerPW); err != nil {
				return nil, fmt.Errorf("local cluster: %w", err)
			}
			lc := Config{Dir: nd.Dir, HTTPPort: nd.HTTP, TCPPort: nd.TCP,
				ReaderDatabases: cfg.ReaderDatabases, Log: cfg.Log, MaxMemoryPerQuery: 1 << 30}
			l, err := Start(ctx, lc)
			if err != nil {
				return nil, fmt.Errorf("local cluster: shard %d replica %d: %w", nd.Shard, nd.Replica, err)
			}
			c.Nodes[len(c.Nodes)-1] = append(c.Nodes[len(c.Nodes)-1], l)
			if len(c.configs) < nd.Shard {
				c.configs = append(c.configs, nil)
			}
			c.configs[nd.Shard-1] = append(c.configs[nd.Shard-1], lc)
		}
	}
	ok = true
	return c, nil
}

// Kill ends one server with SIGKILL (shard and replica count from 0), as a
// machine failing would.
func (c *Cluster) Kill(shard, replica int) {
	l := c.Nodes[shard][replica]
	l.kill()
	_ = l.Stop(context.Background()) // releases its directory for Restart
}

// Restart starts a killed or stopped server again on its data and ports.
func (c *Cluster) Restart(ctx context.Context, shard, replica int) error {
	l, err := Start(ctx, c.configs[shard][replica])
	if err != nil {
		return fmt.Errorf("local cluster: restart shard %d replica %d: %w", shard+1, replica+1, err)
	}
	c.Nodes[shard][replica] = l
	return nil
}

// Stop stops every server, then ZooKeeper.
func (c *Cluster) Stop(ctx context.Context) {
	for _, row := range c.Nodes {
		for _, l := range row {
			if l != nil {
				_ = l.Stop(ctx)
			}
		}
	}
	if c.ZK != nil {
		c.ZK.Stop()
	}
}

// writeClusterConfig puts the cluster files herd ships (deploy/clickhouse/
// cluster: remote_servers, zookeeper, macros; users.d/cluster.xml) into the
// node's config.d and users.d,
// with the hosts, ports and password of this machine's cluster filled in:
// the local cluster runs on exactly what operators deploy.
func writeClusterConfig(self node, nodes [][]node, zkPort int, writerPW string) error {
	if len(nodes) != 2 || len(nodes[0]) != 2 {
		return errors.New("deploy/clickhouse/cluster describes 2 shards of 2 replicas")
	}
	replace := []string{"REPLACE_WITH_WRITER_PASSWORD", xmlEscape(writerPW),
		// Every server is on this machine.
		"REPLACE_WITH_IP_OF_CH_S1_R1", "127.0.0.1", "REPLACE_WITH_IP_OF_CH_S1_R2", "127.0.0.1",
		"REPLACE_WITH_IP_OF_CH_S2_R1", "127.0.0.1", "REPLACE_WITH_IP_OF_CH_S2_R2", "127.0.0.1",
		"<host>zk1</host><port>2181</port>", "<host>127.0.0.1</host><port>" + strconv.Itoa(zkPort) + "</port>",
		"<interserver_http_port>9009</interserver_http_port>", "<interserver_http_port>" + strconv.Itoa(self.Interserver) + "</interserver_http_port>",
		"<interserver_http_host>ch-s1-r1</interserver_http_host>", "<interserver_http_host>127.0.0.1</interserver_http_host>",
		"<shard>01</shard>", fmt.Sprintf("<shard>%02d</shard>", self.Shard),
		"<replica>r1</replica>", fmt.Sprintf("<replica>r%d</replica>", self.Replica),
	}
	for _, row := range nodes {
		for _, nd := range row {
			replace = append(replace, fmt.Sprintf("<host>ch-s%d-r%d</host><port>9000</port>", nd.Shard, nd.Replica),
				"<host>127.0.0.1</host><port>"+strconv.Itoa(nd.TCP)+"</port>")
		}
	}
	r := strings.NewReplacer(replace...)
	// One ZooKeeper here: the ensemble's other two members go.
	others := regexp.MustCompile(`\s*<node><host>zk[23]</host><port>2181</port></node>`)
	if err := os.MkdirAll(filepath.Join(self.Dir, "config.d"), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(self.Dir, "users.d"), 0o700); err != nil {
		return err
	}
	for _, name := range []string{"remote_servers.xml", "zookeeper.xml", "macros.xml", "users.d/cluster.xml"} {
		data, err := deploy.Files.ReadFile("clickhouse/cluster/" + name)
		if err != nil {
			return err
		}
		text := r.Replace(others.ReplaceAllString(string(data), ""))
		if left := unfilled.FindString(text); left != "" {
			return fmt.Errorf("deploy/clickhouse/cluster/%s: %q not filled in: the file no longer has the shape the harness knows", name, left)
		}
		to := filepath.Join(self.Dir, "config.d", name)
		if strings.HasPrefix(name, "users.d/") {
			to = filepath.Join(self.Dir, name)
		}
		if err := os.WriteFile(to, []byte(text), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// unfilled finds a placeholder of the shipped files left in a rendered one
// (comments aside).
var unfilled = regexp.MustCompile(`>(ch-s\d-r\d|zk\d|REPLACE\w*|9000|9009|2181)<`)
