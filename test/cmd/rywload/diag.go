package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"
)

// maxLiveErrors is how many failed statements are printed as they happen;
// the report counts them all.
const maxLiveErrors = 10

// maxDumps bounds the goroutine dumps one run writes.
const maxDumps = 3

// closeTimeout bounds shutting a proxy down once its clients have left.
// A session that does not end by then is stuck, and waiting longer would
// only hide that behind a run that never finishes.
const closeTimeout = 10 * time.Second

// diag records evidence of a misbehaving proxy while it misbehaves: the
// first errors with their time, and goroutine dumps of the whole process,
// shardgate's sessions included, taken while a statement hangs.
type diag struct {
	mu      sync.Mutex
	w       io.Writer
	dir     string
	printed int
	dumps   []string
}

// statementFailed prints the first few failed statements as they happen.
func (d *diag) statementFailed(client int, stmt string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.printed >= maxLiveErrors {
		return
	}
	d.printed++
	fmt.Fprintf(d.w, "rywload: %s client %d: %s: %v\n", time.Now().Format("15:04:05.000"), client, stmt, err)
}

// dump writes every goroutine's stack to a new file and returns its path,
// or "" when the run already wrote maxDumps or the file cannot be made.
func (d *diag) dump(reason string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.dumps) >= maxDumps {
		return ""
	}
	path := filepath.Join(d.dir, fmt.Sprintf("rywload-goroutines-%s-%d.txt", time.Now().Format("150405.000"), os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(d.w, "rywload: goroutine dump: %v\n", err)
		return ""
	}
	fmt.Fprintf(f, "rywload goroutine dump, %s: %s\n\n", time.Now().Format(time.RFC3339Nano), reason)
	err = pprof.Lookup("goroutine").WriteTo(f, 2)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(d.w, "rywload: goroutine dump: %v\n", err)
		return ""
	}
	d.dumps = append(d.dumps, path)
	fmt.Fprintf(d.w, "rywload: %s; goroutines dumped to %s\n", reason, path)
	return path
}

// closeBounded shuts p down, giving its sessions closeTimeout to end, and
// reports whether they did. When they do not, the pools and the monitor
// are closed anyway, which may or may not free the stuck sessions; either
// way the run goes on.
func closeBounded(p *runningProxy, d *diag) bool {
	done := make(chan struct{})
	go func() {
		p.srv.Close()
		close(done)
	}()
	ok := true
	select {
	case <-done:
	case <-time.After(closeTimeout):
		ok = false
		reason := fmt.Sprintf("shardgate's Server.Close has not returned %v after every client left", closeTimeout)
		if d.dump(reason) == "" {
			fmt.Fprintf(d.w, "rywload: %s\n", reason)
		}
	}
	p.pools.Close()
	p.topo.Close()
	return ok
}
