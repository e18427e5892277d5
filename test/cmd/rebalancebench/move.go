package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	sgbench "github.com/shardgate/shardgate/test/bench"
)

// moveTimeout bounds one move, copy and cleanup included.
const moveTimeout = 10 * time.Minute

// moveReq is one `shardgate rebalance move`: [lo, hi) of t's hash space
// ("" is open) to shard to.
type moveReq struct {
	lo, hi, to string
}

func (r moveReq) String() string {
	return fmt.Sprintf("[%s, %s) -> %s", hashBound(r.lo, "-inf"), hashBound(r.hi, "+inf"), r.to)
}

// hashBound names a bound for people: powers of two as such.
func hashBound(s, open string) string {
	switch s {
	case "":
		return open
	case "0":
		return "0"
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil && v&(v-1) == 0 {
		for e := range 64 {
			if v == 1<<e {
				return fmt.Sprintf("2^%d", e)
			}
		}
	}
	return s
}

// hashRange is the range the move moves, for the clients' windows.
func (r moveReq) hashRange() (hashRange, error) {
	var hr hashRange
	if r.lo == "" {
		hr.lo = -1 << 63
	} else if v, err := strconv.ParseInt(r.lo, 10, 64); err == nil {
		hr.lo = v
	} else {
		return hr, err
	}
	if r.hi == "" {
		hr.hiOpen = true
	} else if v, err := strconv.ParseInt(r.hi, 10, 64); err == nil {
		hr.hi = v
	} else {
		return hr, err
	}
	return hr, nil
}

// moveResult is what one move took, from the tool's status and, under
// load, the clients' window.
type moveResult struct {
	req  moveReq
	from string
	id   int64
	wall time.Duration // the tool's run, start to exit
	status
	// toolPause is the "cutover done" log line's write_pause, a check on
	// status.pause.
	toolPause time.Duration
	loaded    bool // clients were writing
	seen      windowStats
}

// status is a move's line in `shardgate rebalance status ID`.
type status struct {
	phase                 string
	rowsCopied, rowsTotal int64
	copyTook              time.Duration
	attempts              int
	pause                 time.Duration
	deleted               int64
	verified              bool
}

// rowsPerSec is the copy's rate.
func (r moveResult) rowsPerSec() float64 {
	if r.copyTook <= 0 {
		return 0
	}
	return float64(r.rowsCopied) / r.copyTook.Seconds()
}

// writesPerSec is the clients' rate during the move.
func (r moveResult) writesPerSec() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.seen.inN+r.seen.outN) / r.wall.Seconds()
}

// move runs one move to its end with the tool, as an operator would,
// and reads its figures back with `rebalance status`. With l, the
// clients' writes during the move report to a window of their own.
func (b *bench) move(ctx context.Context, req moveReq, l *load, n int) (moveResult, error) {
	res := moveResult{req: req, loaded: l != nil}
	hr, err := req.hashRange()
	if err != nil {
		return res, fmt.Errorf("move %s: %w", req, err)
	}
	w := &window{moving: hr}
	if l != nil {
		l.watch(w)
		defer l.watch(nil)
	}
	args := []string{"rebalance", "move", "-c", b.cfgPath, "--distribution", dist, "--to", req.to,
		"--max-pause", b.cfg.maxPause.String(), "--user", "postgres", "--database", appDB}
	if req.lo != "" {
		args = append(args, "--lo", req.lo)
	}
	if req.hi != "" {
		args = append(args, "--hi", req.hi)
	}
	var out strings.Builder
	start := time.Now()
	logPath := filepath.Join(b.work, fmt.Sprintf("move-%02d.log", n))
	c, err := sgbench.StartProc("rebalance move", logPath, sgbench.ProcOptions{Tee: &out}, b.bin, args...)
	if err != nil {
		return res, err
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		// The tool stops the move on SIGTERM; the cluster goes anyway.
		c.Stop(sgbench.ProxyStopTimeout)
		return res, ctx.Err()
	case <-time.After(moveTimeout):
		c.Stop(sgbench.ProxyStopTimeout)
		return res, fmt.Errorf("move %s: not done after %v; its log ends with:\n%s", req, moveTimeout, c.LogTail(20))
	}
	res.wall = time.Since(start)
	res.seen = w.stats()
	text := out.String()
	res.id, res.from = parseStarted(text)
	res.toolPause = parseCutoverPause(text)
	if err := c.Err(); err != nil {
		return res, fmt.Errorf("move %s: %v; its output ends with:\n%s", req, err, c.LogTail(20))
	}
	if res.id == 0 {
		return res, fmt.Errorf("move %s: no \"move N started\" line in its output:\n%s", req, c.LogTail(20))
	}
	st, err := b.status(ctx, res.id)
	if err != nil {
		return res, err
	}
	res.status = st
	if res.pause == 0 {
		res.pause = res.toolPause
	}
	if st.phase != "done" || !st.verified {
		b.rep.problem("move %d %s ended in phase %s, verified %v", res.id, req, st.phase, st.verified)
	}
	return res, nil
}

// status runs `shardgate rebalance status ID` and parses its figures.
func (b *bench) status(ctx context.Context, id int64) (status, error) {
	cmd := exec.CommandContext(ctx, b.bin, "rebalance", "status", "-c", b.cfgPath, strconv.FormatInt(id, 10))
	cmd.Env = sgbench.CleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return status{}, fmt.Errorf("rebalance status %d: %w\n%s", id, err, out)
	}
	st, err := parseStatus(string(out))
	if err != nil {
		return st, fmt.Errorf("rebalance status %d: %w; it printed:\n%s", id, err, out)
	}
	return st, nil
}

// verify runs `shardgate rebalance verify`: no row on a shard that does
// not own it.
func (b *bench) verify(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, b.bin, "rebalance", "verify", "-c", b.cfgPath, "--user", "postgres", "--database", appDB)
	cmd.Env = sgbench.CleanEnv()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

var (
	startedRE = regexp.MustCompile(`(?m)^move (\d+) started`)
	// The plan's first line: "move hash range [0, +inf) of distribution t
	// (hash on bigint) from shard s0 to shard s1".
	fromRE    = regexp.MustCompile(`(?m)^move .* from shard (\S+) to shard \S+$`)
	cutoverRE = regexp.MustCompile(`msg="cutover done".*\bwrite_pause=(\S+)`)
	statusRE  = regexp.MustCompile(`(?m)^move (\d+)\s+(\S+)\s(?s:.*?)\n\s+rows copied (\d+) of ~(\d+), copy took (\S+), cutover attempts (\d+), write pause (\S+), rows deleted from the source (\d+), verified (\w+)`)
)

// parseStarted finds the move's id and source shard in the tool's output.
func parseStarted(out string) (id int64, from string) {
	if m := startedRE.FindStringSubmatch(out); m != nil {
		id, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := fromRE.FindStringSubmatch(out); m != nil {
		from = m[1]
	}
	return id, from
}

// parseCutoverPause reads write_pause from the tool's "cutover done" log
// line; 0 if there is none.
func parseCutoverPause(out string) time.Duration {
	m := cutoverRE.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	d, _ := time.ParseDuration(strings.Trim(m[1], `"`))
	return d
}

// parseStatus reads the figures of `rebalance status ID`.
func parseStatus(out string) (status, error) {
	m := statusRE.FindStringSubmatch(out)
	if m == nil {
		return status{}, errors.New("no figures found")
	}
	var st status
	var errs []error
	num := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		errs = append(errs, err)
		return v
	}
	dur := func(s string) time.Duration {
		d, err := time.ParseDuration(s)
		errs = append(errs, err)
		return d
	}
	st.phase = m[2]
	st.rowsCopied, st.rowsTotal = num(m[3]), num(m[4])
	st.copyTook = dur(m[5])
	st.attempts = int(num(m[6]))
	st.pause = dur(m[7])
	st.deleted = num(m[8])
	st.verified = m[9] == "true"
	return st, errors.Join(errs...)
}
