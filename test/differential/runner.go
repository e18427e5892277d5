package differential

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// RefusalCode is the SQLSTATE the proxy answers a statement it cannot run
// correctly with. The workload never makes a server raise it.
const RefusalCode = "0A000"

// Runner runs steps on the proxy and the reference server and compares.
// The proxy goes first; a statement it refuses is not run on the
// reference, so both keep the same data.
type Runner struct {
	Proxy, Ref *pgx.Conn
	// Span says on how many shards the rows of keys live; nil, or a
	// result below 1, means unknown. Labels use it.
	Span func(keys []Key) int
	// Shards is the number of shards, what a statement on every shard
	// spans.
	Shards int
	// GiveUpAfter, when above 0, stops sending steps of a label the proxy
	// refused that many times without ever running one: they are counted
	// as Skipped. A construct the proxy does not support yet then costs a
	// run little, however slowly it is refused.
	GiveUpAfter int

	// Tallies are the counts per label.
	Tallies map[string]*Tally
	// Mismatches are the differences found, in order.
	Mismatches []Mismatch
	// Statements counts the statements sent to the proxy.
	Statements int
}

// Tally counts what happened to the statements of one label.
type Tally struct {
	// Run counts statements both sides ran; Errors those of them that
	// failed alike (same SQLSTATE) on both.
	Run, Errors int
	// Refused counts statements the proxy refused; Example is the first
	// refusal's message and statement.
	Refused int
	Example string
	// Mismatched counts statements whose answers differed.
	Mismatched int
	// Skipped counts steps not sent (see Runner.GiveUpAfter).
	Skipped int
	// ProxyTime is the time the proxy took for them all (refusals
	// included).
	ProxyTime time.Duration
}

// Mismatch is one difference between the proxy's and the reference's
// answers.
type Mismatch struct {
	Label string
	Step  string
	Diff  string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("[%s] %s\n%s", m.Label, m.Step, m.Diff)
}

func (r *Runner) tally(label string) *Tally {
	if r.Tallies == nil {
		r.Tallies = map[string]*Tally{}
	}
	t := r.Tallies[label]
	if t == nil {
		t = &Tally{}
		r.Tallies[label] = t
	}
	return t
}

// Labels lists the labels tallied, sorted.
func (r *Runner) Labels() []string {
	return slices.Sorted(maps.Keys(r.Tallies))
}

// Label is st's category, with ":one-shard" or ":cross-shard" when its
// keys (or the lack of them) tell.
func (r *Runner) Label(st *Step) string {
	if st.Kind == KindTxn {
		all := false
		var keys []Key
		for i := range st.Body {
			all = all || st.Body[i].AllShards
			keys = append(keys, st.Body[i].Keys...)
		}
		return st.Category + r.spanSuffix(all, keys)
	}
	return st.Category + r.spanSuffix(st.AllShards, st.Keys)
}

func (r *Runner) spanSuffix(all bool, keys []Key) string {
	switch {
	case all && r.Shards > 1:
		return ":cross-shard"
	case len(keys) == 0 || r.Span == nil:
		return ""
	}
	switch n := r.Span(keys); {
	case n == 1:
		return ":one-shard"
	case n > 1:
		return ":cross-shard"
	}
	return ""
}

// Step runs st on both sides and records the outcome.
func (r *Runner) Step(ctx context.Context, st *Step) {
	if r.givenUp(r.Label(st)) {
		return
	}
	if st.Kind == KindTxn {
		r.txn(ctx, st)
		return
	}
	label := r.Label(st)
	start := time.Now()
	got := Run(ctx, r.Proxy, st)
	r.tally(label).ProxyTime += time.Since(start)
	r.Statements += st.Statements()
	if r.refused(label, st, nil, got) {
		return
	}
	want := Run(ctx, r.Ref, st)
	r.record(label, st, got, want)
}

// givenUp counts a skipped step of label when the proxy always refused
// it so far.
func (r *Runner) givenUp(label string) bool {
	t := r.tally(label)
	if r.GiveUpAfter > 0 && t.Refused >= r.GiveUpAfter && t.Run == 0 {
		t.Skipped++
		return true
	}
	return false
}

// refused records a refusal of the proxy; in is the refused statement
// when it is part of the transaction st.
func (r *Runner) refused(label string, st, in *Step, got Result) bool {
	if got.Code != RefusalCode {
		return false
	}
	t := r.tally(label)
	t.Refused++
	if t.Example == "" {
		t.Example = fmt.Sprintf("%s\n    refused: %s", oneLine(st.String()), got.Msg)
		if in != nil {
			t.Example = fmt.Sprintf("%s\n    refused: %s\n    in: %s", oneLine(in.String()), got.Msg, oneLine(st.String()))
		}
	}
	return true
}

func (r *Runner) record(label string, st *Step, got, want Result) bool {
	t := r.tally(label)
	t.Run++
	if err := Compare(st, got, want); err != nil {
		t.Mismatched++
		r.Mismatches = append(r.Mismatches, Mismatch{Label: label, Step: st.String(), Diff: err.Error()})
		return false
	}
	if got.Failed() {
		t.Errors++
	}
	return true
}

// txn runs a transaction. Its statements are tallied under
// "txn>"+their label; the transaction itself under "txn" with its span
// over all its statements' keys. A refusal inside it is tallied under
// the transaction's label (the proxy refuses the statement because of the
// transaction it is in, or for itself: either way the transaction cannot
// go on), and both sides roll back. After an error on both sides the
// next statement must find the transaction aborted on both.
func (r *Runner) txn(ctx context.Context, st *Step) {
	label := r.Label(st)
	ctl := func(sql string) *Step {
		return &Step{Category: label, Kind: KindQuery, SQL: sql, Mode: pgx.QueryExecModeSimpleProtocol}
	}
	start := time.Now()
	defer func() { r.tally(label).ProxyTime += time.Since(start) }()
	begin := ctl(st.Begin)
	if !r.pair(ctx, label, begin) {
		r.rollback(ctx)
		return
	}
	failed := false
	for i := range st.Body {
		in := &st.Body[i]
		got := Run(ctx, r.Proxy, in)
		r.Statements += in.Statements()
		if got.Code == RefusalCode {
			r.refused(label, st, in, got)
			r.rollback(ctx)
			return
		}
		want := Run(ctx, r.Ref, in)
		r.record("txn>"+r.Label(in), in, got, want)
		if got.Failed() || want.Failed() {
			failed = true
			break
		}
	}
	if failed {
		// The transaction is aborted: the next statement must say so.
		r.pair(ctx, label, ctl("select 1"))
	}
	end := "rollback"
	if st.Commit {
		end = "commit"
	}
	r.pair(ctx, label, ctl(end))
	r.tally(label).Run++
}

// pair runs a control statement of a transaction on both sides; false
// when they disagree (or the proxy refused it).
func (r *Runner) pair(ctx context.Context, label string, st *Step) bool {
	got := Run(ctx, r.Proxy, st)
	r.Statements++
	if r.refused(label, st, nil, got) {
		return false
	}
	want := Run(ctx, r.Ref, st)
	t := r.tally(label)
	if err := Compare(st, got, want); err != nil {
		t.Mismatched++
		r.Mismatches = append(r.Mismatches, Mismatch{Label: label, Step: st.SQL, Diff: err.Error()})
		return false
	}
	return true
}

// rollback ends a transaction on both sides after a refusal or a
// disagreement, whatever state each is in.
func (r *Runner) rollback(ctx context.Context) {
	for _, c := range []*pgx.Conn{r.Proxy, r.Ref} {
		c.Exec(ctx, "rollback", pgx.QueryExecModeSimpleProtocol)
	}
	r.Statements++
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}
