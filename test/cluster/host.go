package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Timeouts for the context-free Host methods; generous because CI machines
// can be slow and crash recovery replays WAL.
const (
	startTimeout = 2 * time.Minute
	stopTimeout  = time.Minute
	killTimeout  = 30 * time.Second
)

// hostConfFile carries the per-host settings. It is included from
// postgresql.conf so that a replica, which inherits its primary's
// postgresql.conf through pg_basebackup, only has to rewrite this file.
const hostConfFile = "shardgate_host.conf"

// Host is one PostgreSQL server of the cluster. Its files live in
// Dir/<Name>: the data directory, the server log and, when the path is short
// enough, the Unix socket.
type Host struct {
	// Name identifies the host, e.g. "s0-primary" or "s0-replica1".
	Name string
	// Shard is the index of the shard the host belongs to.
	Shard int
	// Replica is 0 for the primary and j for the shard's j-th replica. It
	// records how the host was created and is not updated by Promote.
	Replica int
	// Port is the TCP port the server listens on at 127.0.0.1.
	Port int
	// DataDir is the server's data directory (PGDATA).
	DataDir string
	// LogFile receives the server's log (pg_ctl -l). It sits beside DataDir
	// rather than in it so that replicas do not clone their primary's log.
	LogFile string
	// SocketDir holds the server's Unix socket.
	SocketDir string

	c    *Cluster
	root string
	tail *tailer
	mu   sync.Mutex // serialises Start, Stop and Kill
}

// Addr returns the host's TCP address, "127.0.0.1:PORT".
func (h *Host) Addr() string {
	return "127.0.0.1:" + strconv.Itoa(h.Port)
}

// DSN returns a libpq keyword/value connection string for the host with
// TLS disabled. An empty password is left out.
func (h *Host) DSN(user, password, db string) string {
	parts := []string{
		"host=127.0.0.1",
		"port=" + strconv.Itoa(h.Port),
		"user=" + dsnValue(user),
	}
	if password != "" {
		parts = append(parts, "password="+dsnValue(password))
	}
	parts = append(parts, "dbname="+dsnValue(db), "sslmode=disable")
	return strings.Join(parts, " ")
}

// dsnValue quotes a keyword/value DSN value when libpq would otherwise
// misparse it.
func dsnValue(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\\") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// Stop shuts the server down with pg_ctl stop -m fast.
func (h *Host) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	return h.c.run.run(ctx, h.Name, h.root, "pg_ctl", "stop", "-w", "-t", "50", "-m", "fast", "-D", h.DataDir)
}

// Kill simulates a crash: it sends SIGKILL to the postmaster and waits until
// the postmaster and its children are gone, so that Start can follow at
// once. The server's next start runs crash recovery.
func (h *Host) Kill() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	pid, err := readPostmasterPID(h.DataDir)
	if err != nil {
		return err
	}
	if pid == 0 || !alive(pid) {
		return fmt.Errorf("cluster: %s is not running", h.Name)
	}
	if err := killAndWait(pid, killTimeout); err != nil {
		return err
	}
	// The dead postmaster was pg_ctl's child and now waits, a zombie, for
	// init to reap it; some container inits take a second or more. Until
	// then its pid still answers kill(pid, 0), and the next postmaster would
	// take the stale lock files for a live server's and refuse to start.
	if syscall.Kill(pid, 0) == nil {
		for _, lock := range []string{
			filepath.Join(h.DataDir, "postmaster.pid"),
			filepath.Join(h.SocketDir, fmt.Sprintf(".s.PGSQL.%d.lock", h.Port)),
		} {
			if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// Start starts the server again after Stop or Kill and waits until it
// accepts connections.
func (h *Host) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return h.startServer(ctx)
}

// shutdown stops the server however it can: fast shutdown first, SIGKILL if
// that fails. It is a no-op for a host that is not running.
func (h *Host) shutdown() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	pid, err := readPostmasterPID(h.DataDir)
	if err != nil || pid == 0 || !alive(pid) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	err = h.c.run.run(ctx, h.Name, h.root, "pg_ctl", "stop", "-w", "-t", "30", "-m", "fast", "-D", h.DataDir)
	if err == nil || !alive(pid) {
		return nil
	}
	return errors.Join(err, killAndWait(pid, killTimeout))
}

// makeRoot creates the directory holding the host's data dir and log,
// owned by the server's user.
func (h *Host) makeRoot() error {
	if err := os.MkdirAll(h.root, 0o700); err != nil {
		return err
	}
	return h.c.run.own(h.root)
}

// initdb creates a fresh data directory and writes the cluster's settings.
func (h *Host) initdb(ctx context.Context) error {
	if err := h.c.run.run(ctx, h.Name, h.root, "initdb",
		"-D", h.DataDir, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return err
	}
	if err := h.writeFile("pg_hba.conf", hbaConf); err != nil {
		return err
	}
	conf := serverConf + "include '" + hostConfFile + "'\n"
	if len(h.c.opts.ExtraConf) > 0 {
		conf += "# Options.ExtraConf\n" + strings.Join(h.c.opts.ExtraConf, "\n") + "\n"
	}
	f, err := os.OpenFile(filepath.Join(h.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// hbaConf trusts the superuser and replication on loopback so the harness
// and pg_basebackup need no passwords, while Options.Users go through SCRAM
// like they would in production.
const hbaConf = `# written by shardgate test/cluster
local all         all                    trust
host  all         postgres 127.0.0.1/32 trust
host  replication all      127.0.0.1/32 trust
host  all         all      127.0.0.1/32 scram-sha-256
`

// serverConf favours speed over durability: test clusters are disposable.
const serverConf = `
# --- added by shardgate test/cluster ---
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 32MB
password_encryption = 'scram-sha-256'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
# A new logical replication worker (shardgate rebalance's copy) starts
# within this, instead of the default 5s.
wal_retrieve_retry_interval = 200ms
max_prepared_transactions = 20
wal_keep_size = 256MB
hot_standby = on
hot_standby_feedback = on
fsync = off
synchronous_commit = off
# With commits not waiting for WAL, the WAL writer is what sends a commit
# on to the replicas: every 200ms by default, which would make every
# replica look 200ms behind. Real clusters commit synchronously.
wal_writer_delay = 10ms
full_page_writes = off
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
`

// writeHostConf (re)writes the settings that differ between hosts.
func (h *Host) writeHostConf() error {
	conf := fmt.Sprintf("# written by shardgate test/cluster for %s\nport = %d\nunix_socket_directories = '%s'\n",
		h.Name, h.Port, strings.ReplaceAll(h.SocketDir, "'", "''"))
	return h.writeFile(hostConfFile, conf)
}

// writeFile writes a file in the data directory readable by the server.
func (h *Host) writeFile(name, content string) error {
	path := filepath.Join(h.DataDir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return h.c.run.own(path)
}

// cloneFrom makes h a streaming replica of primary with pg_basebackup -R.
// The clone still carries the primary's host settings until startFresh
// rewrites them. application_name lets pg_stat_replication on the primary
// tell replicas apart.
func (h *Host) cloneFrom(ctx context.Context, primary *Host) error {
	conn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=%s", primary.Port, h.Name)
	return h.c.run.run(ctx, h.Name, h.root, "pg_basebackup",
		"-D", h.DataDir, "-d", conn, "-R", "-X", "stream", "-c", "fast", "--no-sync")
}

// errPortInUse marks a start that failed because another process grabbed
// the port between our probe and the server's bind.
var errPortInUse = errors.New("port in use")

// startServer runs pg_ctl start and waits for connections. On failure the
// error carries the new part of the server log, where the reason is.
func (h *Host) startServer(ctx context.Context) error {
	var off int64
	if fi, err := os.Stat(h.LogFile); err == nil {
		off = fi.Size()
	}
	err := h.c.run.run(ctx, h.Name, h.root, "pg_ctl", "start", "-w", "-t", "120", "-D", h.DataDir, "-l", h.LogFile)
	if err != nil {
		logTail := readFrom(h.LogFile, off)
		if strings.Contains(logTail, "could not bind") || strings.Contains(logTail, "could not create any TCP/IP sockets") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return fmt.Errorf("cluster: start %s on port %d: %w\nserver log:\n%s", h.Name, h.Port, err, lastLines(logTail, 30))
	}
	return h.waitReady(ctx)
}

// startFresh starts a just-created server, moving it to a new port if the
// probed one was taken in the meantime.
func (h *Host) startFresh(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		if err := h.writeHostConf(); err != nil {
			return err
		}
		err := h.startServer(ctx)
		if err == nil || !errors.Is(err, errPortInUse) || h.c.opts.BasePort != 0 || attempt == 2 {
			return err
		}
		port, perr := freePort()
		if perr != nil {
			return errors.Join(err, perr)
		}
		releasePort(h.Port)
		h.Port = port
	}
}

// waitReady polls until the server accepts a superuser connection.
func (h *Host) waitReady(ctx context.Context) error {
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := h.connect(pctx)
		if err != nil {
			return false, nil
		}
		conn.Close(context.Background())
		return true, nil
	}, func() error { return fmt.Errorf("cluster: %s does not accept connections", h.Name) })
}

// readFrom returns the part of a log file past off.
func readFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
