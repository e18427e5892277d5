package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// minReplicaShare is the share of plain reads, in percent, that replicas
// must serve under ryw=lsn: below it, read-your-writes is kept by sending
// reads to the primary, which defeats the point of replicas.
const minReplicaShare = 70.0

// phase returns the measured phase run in mode m, or nil.
func (r *report) phase(m mode) *phaseResult {
	for _, p := range r.phases {
		if p.mode.name == m.name {
			return p
		}
	}
	return nil
}

// totalPauses counts the replay pauses over all measured phases.
func (r *report) totalPauses() int {
	n := 0
	for _, p := range r.phases {
		n += p.chaos.pauses
	}
	return n
}

// write prints the report.
func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "read-your-writes load test: %d clients, %v each, 1 primary + %d replicas, replay paused/resumed at random (%d pauses)\n",
		r.cfg.clients, r.cfg.duration, r.replicas, r.totalPauses())
	fmt.Fprintf(w, "run order: %s; each with a fresh in-process shardgate (transaction mode, pool %d per host,\n"+
		"monitor every %v), an emptied table and its own replay chaos; %.0f%% of iterations write then read\n",
		strings.Join(r.phaseNames(), ", then "), poolSize, monitorInterval, 100*r.cfg.writeShare)
	if r.cfg.syncCommit {
		fmt.Fprintln(w, "PostgreSQL: synchronous_commit=on (--sync-commit)")
	} else {
		fmt.Fprintln(w, "PostgreSQL: test/cluster's synchronous_commit=off, wal_writer_delay=10ms: a commit reaches the replicas up to ~10ms late")
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\ttps\twrites\town-reads\tstale\town-on-replica\tplain-reads\ton-replica\terrors\t")
	for _, p := range r.phases {
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%d\t%d\t%.1f%%\t%d\t%.1f%%\t%d\t\n", p.mode.name, p.tps(), p.writes, p.ownReads, p.stale,
			share(p.ownOnReplica, p.ownReads), p.plainReads, share(p.plainOnReplica, p.plainReads), p.errorTotal())
	}
	tw.Flush()
	if ryw, all := r.phase(modeRYW), r.phase(modeAllPrimary); ryw != nil && all != nil && all.tps() > 0 {
		fmt.Fprintf(w, "tps ratio (ryw / all-primary): %.2f\n", ryw.tps()/all.tps())
	}
	fmt.Fprintln(w, "(tps: statements per second; each statement is its own transaction)")
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "latency (ms)\twrite p50\tp99\town-read p50\tp99\tplain-read p50\tp99\t")
	for _, p := range r.phases {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.mode.name,
			ms(p.writeLat.quantile(.5)), ms(p.writeLat.quantile(.99)),
			ms(p.ownLat.quantile(.5)), ms(p.ownLat.quantile(.99)),
			ms(p.plainLat.quantile(.5)), ms(p.plainLat.quantile(.99)))
	}
	tw.Flush()
	fmt.Fprintln(w)

	for _, p := range r.phases {
		if len(p.timeline) < 2 {
			continue
		}
		fmt.Fprintf(w, "tps per %v, %s:", timelineStep, p.mode.name)
		for _, v := range p.timeline {
			fmt.Fprintf(w, " %.0f", v)
		}
		fmt.Fprintln(w)
	}
	for _, p := range r.phases {
		c := p.chaos
		fmt.Fprintf(w, "replay chaos during %s: %d pauses, each replica paused %.0f%% of the time, all paused %v in all",
			p.mode.name, c.pauses, 100*c.paused.Seconds()/(p.elapsed.Seconds()*float64(max(r.replicas, 1))),
			c.allPaused.Round(100*time.Millisecond))
		if c.errors > 0 {
			fmt.Fprintf(w, ", %d pause/resume errors (first: %s)", c.errors, c.firstErr)
		}
		fmt.Fprintln(w)
	}
	if p := r.proof; p != nil {
		fmt.Fprintf(w, "stale-read check: %s on every replica, %v: %d own reads, %d stale (%.1f%%, %d of them on a replica)",
			p.mode.name, r.cfg.proofDuration, p.ownReads, p.stale, share(p.stale, p.ownReads), p.staleOnReplica)
		if n := p.errorTotal(); n > 0 {
			fmt.Fprintf(w, ", %d errors", n)
		}
		fmt.Fprintln(w)
	}
	for _, p := range r.all() {
		if late := p.elapsed - p.window; late > time.Second {
			fmt.Fprintf(w, "%s: the last client finished %v after the window closed; tps counts only the window\n", p.mode.name, late.Round(100*time.Millisecond))
		}
	}
	fmt.Fprintf(w, "shardgate logged %d lines at warning level or above\n", r.proxyWarnings)
	for _, d := range r.dumps {
		fmt.Fprintf(w, "goroutine dump: %s\n", d)
	}
	for _, p := range r.all() {
		r.writeDetails(w, p)
	}
}

// all returns the measured phases and the stale-read check, if it ran.
func (r *report) all() []*phaseResult {
	if r.proof == nil {
		return r.phases
	}
	return append(r.phases[:len(r.phases):len(r.phases)], r.proof)
}

// writeDetails quotes a phase's errors and stale reads, for the proxy's
// maintainers.
func (r *report) writeDetails(w io.Writer, p *phaseResult) {
	if n := p.errorTotal(); n > 0 {
		fmt.Fprintf(w, "errors with %s (%d, %d reconnects), most frequent first:\n", p.mode.name, n, p.reconnects)
		for _, k := range p.topErrors(maxSamples) {
			fmt.Fprintf(w, "  %dx %s\n", p.errors[k], k)
		}
	}
	if p.stale > 0 {
		fmt.Fprintf(w, "stale reads with %s (%d, %d on a replica), first ones:\n", p.mode.name, p.stale, p.staleOnReplica)
		for _, s := range p.staleSamples {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
}

func (r *report) phaseNames() []string {
	names := make([]string, len(r.phases))
	for i, p := range r.phases {
		names[i] = p.mode.name
	}
	return names
}

// failures lists why the run fails; empty means it passes.
func (r *report) failures() []string {
	var out []string
	for _, p := range r.all() {
		// Errors and hangs are bugs in any phase, the ryw=off check
		// included; its stale reads are what it is for.
		if n := p.errorTotal(); n > 0 {
			out = append(out, fmt.Sprintf("%s: %d statements failed", p.mode.name, n))
		}
		if p.closeHung {
			out = append(out, fmt.Sprintf("%s: shardgate's Server.Close did not return within %v after every client left: a session is stuck", p.mode.name, closeTimeout))
		}
	}
	for _, p := range r.phases {
		if p.stale > 0 {
			out = append(out, fmt.Sprintf("%s: %d stale reads of a client's own write", p.mode.name, p.stale))
		}
		if p.ownReads == 0 || p.plainReads == 0 {
			out = append(out, fmt.Sprintf("%s: no own reads or no plain reads were measured", p.mode.name))
		}
		if p.chaos.errors > 0 {
			out = append(out, fmt.Sprintf("%s: %d replay pauses or resumes failed", p.mode.name, p.chaos.errors))
		}
	}
	if ryw := r.phase(modeRYW); ryw != nil {
		if s := share(ryw.plainOnReplica, ryw.plainReads); s < minReplicaShare {
			out = append(out, fmt.Sprintf("%s: replicas served %.1f%% of plain reads, below %.0f%%", ryw.mode.name, s, minReplicaShare))
		}
		if ryw.chaos.pauses == 0 {
			out = append(out, fmt.Sprintf("%s: replay was never paused, so read-your-writes was not put to the test", ryw.mode.name))
		}
	}
	if p := r.proof; p != nil && p.stale == 0 {
		out = append(out, fmt.Sprintf("%s: no stale read at all, so the check cannot fail and its zero proves nothing", p.mode.name))
	}
	return out
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}
