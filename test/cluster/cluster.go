package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// markerFile tags a directory as built by this package, so that Start only
// ever wipes directories it created itself.
const markerFile = ".shardgate-cluster"

// maxSocketPath leaves room below the kernel's 108-byte sun_path limit.
const maxSocketPath = 100

// Cluster is a running set of shards. Stop it when done.
type Cluster struct {
	// Shards are in index order.
	Shards []*Shard
	// Dir is the base directory holding every host's files.
	Dir string

	opts     Options
	run      *runner
	tempDir  bool   // Dir is ours to remove
	sockTemp string // short socket dir used when Dir is too deep, or ""
	stopOnce sync.Once
	stopErr  error
}

// Shard is one primary and its replicas.
type Shard struct {
	// Index is the shard's position, also used in host names ("s<Index>-").
	Index int
	// Primary is the host the shard was created with as primary. It keeps
	// that place after a replica is promoted.
	Primary *Host
	// Replicas stream from Primary.
	Replicas []*Host
}

// Start builds and starts a cluster as described by opts: it runs initdb for
// each shard's primary, creates opts.Users and opts.Databases there, clones
// the replicas with pg_basebackup and waits until they stream. Shards are
// set up in parallel. On failure everything started so far is stopped.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	binDir, err := FindBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	run, err := newRunner(binDir, &logSink{w: opts.Log})
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, run: run}
	if err := c.prepareDir(); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.layout(); err != nil {
		c.Stop()
		return nil, err
	}
	errs := make([]error, len(c.Shards))
	var wg sync.WaitGroup
	for i, s := range c.Shards {
		wg.Go(func() { errs[i] = c.startShard(ctx, s) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if serr := c.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, err
	}
	return c, nil
}

// Hosts returns every host, shard by shard, primary first.
func (c *Cluster) Hosts() []*Host {
	var hosts []*Host
	for _, s := range c.Shards {
		if s.Primary != nil {
			hosts = append(hosts, s.Primary)
		}
		hosts = append(hosts, s.Replicas...)
	}
	return hosts
}

// Primaries returns each shard's Primary in shard order.
func (c *Cluster) Primaries() []*Host {
	hosts := make([]*Host, len(c.Shards))
	for i, s := range c.Shards {
		hosts[i] = s.Primary
	}
	return hosts
}

// Stop shuts every host down (fast mode, SIGKILL as a last resort) and
// removes Dir if Start created it as a temporary directory. A given Dir is
// kept, logs included. Calling Stop again returns the first result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		hosts := c.Hosts()
		errs := make([]error, len(hosts))
		var wg sync.WaitGroup
		for i, h := range hosts {
			wg.Go(func() { errs[i] = h.shutdown() })
		}
		wg.Wait()
		for _, h := range hosts {
			h.tail.close()
			releasePort(h.Port)
		}
		if c.tempDir {
			errs = append(errs, os.RemoveAll(c.Dir))
		}
		if c.sockTemp != "" {
			errs = append(errs, os.RemoveAll(c.sockTemp))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// prepareDir creates Dir, or empties it when a previous cluster left it.
func (c *Cluster) prepareDir() error {
	if c.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "shardgate-cluster-")
		if err != nil {
			return err
		}
		c.Dir, c.tempDir = dir, true
	} else {
		dir, err := filepath.Abs(c.opts.Dir)
		if err != nil {
			return err
		}
		c.Dir = dir
		if err := wipePrevious(dir); err != nil {
			return err
		}
	}
	// MkdirTemp makes 0700; the server's user must get through.
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(c.Dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, markerFile), []byte("created by shardgate test/cluster; Start may wipe this directory\n"), 0o644); err != nil {
		return err
	}
	return c.run.checkTraversable(c.Dir)
}

// wipePrevious empties dir after killing any postmaster still running from
// an earlier cluster there. It refuses to touch a non-empty directory that
// lacks the marker, since Dir may be a typo for something precious.
func wipePrevious(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		return fmt.Errorf("cluster: %s is not empty and was not created by a previous cluster; refusing to wipe it", dir)
	}
	for _, e := range entries {
		pid, err := readPostmasterPID(filepath.Join(dir, e.Name(), "data"))
		if err != nil || pid == 0 || !alive(pid) || !looksLikePostgres(pid) {
			continue
		}
		if err := killAndWait(pid, killTimeout); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// layout names the hosts, assigns ports and directories and starts their
// log tailers.
func (c *Cluster) layout() error {
	sockDir := ""
	longest := filepath.Join(c.Dir, fmt.Sprintf("s%d-replica%d", c.opts.Shards-1, c.opts.Replicas), ".s.PGSQL.65535")
	if len(longest) > maxSocketPath {
		dir, err := os.MkdirTemp("", "sg")
		if err != nil {
			return err
		}
		c.sockTemp, sockDir = dir, dir
		if err := c.run.own(dir); err != nil {
			return err
		}
	}
	for i := range c.opts.Shards {
		s := &Shard{Index: i}
		c.Shards = append(c.Shards, s)
		for j := 0; j <= c.opts.Replicas; j++ {
			name := fmt.Sprintf("s%d-primary", i)
			if j > 0 {
				name = fmt.Sprintf("s%d-replica%d", i, j)
			}
			root := filepath.Join(c.Dir, name)
			h := &Host{
				Name:      name,
				Shard:     i,
				Replica:   j,
				DataDir:   filepath.Join(root, "data"),
				LogFile:   filepath.Join(root, "postgres.log"),
				SocketDir: root,
				c:         c,
				root:      root,
			}
			if sockDir != "" {
				h.SocketDir = sockDir
			}
			// Attach first so Stop sees the host whatever fails next.
			if j == 0 {
				s.Primary = h
			} else {
				s.Replicas = append(s.Replicas, h)
			}
			h.tail = startTailer(c.run.log, name, h.LogFile)
			if c.opts.BasePort != 0 {
				h.Port = c.opts.BasePort + i*10 + j
				if err := reservePort(h.Port); err != nil {
					h.Port = 0
					return err
				}
			} else {
				port, err := freePort()
				if err != nil {
					return err
				}
				h.Port = port
			}
			if err := h.makeRoot(); err != nil {
				return err
			}
		}
	}
	return nil
}

// startShard brings up a shard's primary, its roles and databases, then its
// replicas in parallel.
func (c *Cluster) startShard(ctx context.Context, s *Shard) error {
	p := s.Primary
	if err := p.initdb(ctx); err != nil {
		return err
	}
	if err := p.startFresh(ctx); err != nil {
		return err
	}
	// Before the base backups, so that replicas inherit roles and databases.
	if err := p.createRoles(ctx, c.opts.Users, c.opts.Databases); err != nil {
		return err
	}
	errs := make([]error, len(s.Replicas))
	var wg sync.WaitGroup
	for j, r := range s.Replicas {
		wg.Go(func() {
			if err := r.cloneFrom(ctx, p); err != nil {
				errs[j] = err
				return
			}
			if err := r.startFresh(ctx); err != nil {
				errs[j] = err
				return
			}
			errs[j] = r.waitStreaming(ctx)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
