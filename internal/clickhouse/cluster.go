package clickhouse

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
	"strconv"
	"syscall"
	"text/template"
	"time"
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

// ClusterConfig describes a local ClickHouse cluster: shards × replicas
// clickhouse-server processes on loopback and one ZooKeeper.
type ClusterConfig struct {
	// Dir holds ZooKeeper's and every server's directory. Required.
	Dir string
	// Name is the cluster's name in remote_servers (default "herd").
	Name             string
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
	Nodes [][]*Local
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
	if cfg.Name == "" {
		cfg.Name = "herd"
	}
	if cfg.Shards < 1 || cfg.Replicas < 1 {
		return nil, errors.New("local cluster: at least one shard and one replica")
	}
	if _, err := Ident(cfg.Name); err != nil {
		return nil, fmt.Errorf("local cluster: name: %w", err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	zk, err := StartZooKeeper(ctx, filepath.Join(dir, "zookeeper"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: cfg.Name, ZK: zk}
	ok := false
	defer func() {
		if !ok {
			c.Stop(context.Background())
		}
	}()
	writerPW, err := secretFile(filepath.Join(dir, "writer.password"))
	if err != nil {
		return nil, err
	}
	readerPW, err := secretFile(filepath.Join(dir, "reader.password"))
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
			var extra bytes.Buffer
			if err := clusterXML.Execute(&extra, map[string]any{
				"Name": cfg.Name, "Nodes": nodes, "Self": nd, "ZK": zk.Port, "Writer": WriterUser, "Password": xmlEscape(writerPW),
			}); err != nil {
				return nil, err
			}
			l, err := StartLocal(ctx, LocalConfig{Dir: nd.Dir, HTTPPort: nd.HTTP, TCPPort: nd.TCP, Extra: extra.String(),
				ReaderDatabases: cfg.ReaderDatabases, Log: cfg.Log, MaxMemoryPerQuery: 1 << 30})
			if err != nil {
				return nil, fmt.Errorf("local cluster: shard %d replica %d: %w", nd.Shard, nd.Replica, err)
			}
			c.Nodes[len(c.Nodes)-1] = append(c.Nodes[len(c.Nodes)-1], l)
		}
	}
	ok = true
	return c, nil
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

// clusterXML is each server's part of the cluster: every shard and replica
// (replicas of a shard copy each other through ReplicatedMergeTree, so
// Distributed writes one of them: internal_replication), ZooKeeper, the
// node's macros for table paths, the port replicas fetch parts from, and
// where ON CLUSTER DDL queues.
var clusterXML = template.Must(template.New("cluster").Parse(`
    <remote_servers>
        <{{.Name}}>{{range .Nodes}}
            <shard>
                <internal_replication>true</internal_replication>{{range .}}
                <replica><host>127.0.0.1</host><port>{{.TCP}}</port><user>{{$.Writer}}</user><password>{{$.Password}}</password></replica>{{end}}
            </shard>{{end}}
        </{{.Name}}>
    </remote_servers>
    <zookeeper>
        <node><host>127.0.0.1</host><port>{{.ZK}}</port></node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>
    <macros>
        <cluster>{{.Name}}</cluster>
        <shard>{{printf "%02d" .Self.Shard}}</shard>
        <replica>r{{.Self.Replica}}</replica>
    </macros>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>{{.Self.Interserver}}</interserver_http_port>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
`))
