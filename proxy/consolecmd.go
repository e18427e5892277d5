package proxy

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardgate/shardgate/pool"
	"github.com/shardgate/shardgate/proxy/admin"
)

// The console's commands: their columns (known before they run, for
// Describe) and what they do.

var (
	colsPools = admin.Cols("database", admin.Text, "user", admin.Text, "shard", admin.Text, "host", admin.Text, "role", admin.Text,
		"cl_active", admin.Int8, "cl_waiting", admin.Int8, "sv_active", admin.Int8, "sv_idle", admin.Int8, "sv_used", admin.Int8,
		"sv_login", admin.Int8, "pool_size", admin.Int8, "maxwait", admin.Int8, "maxwait_us", admin.Int8, "pool_mode", admin.Text, "paused", admin.Bool)
	colsStats = admin.Cols("database", admin.Text, "user", admin.Text, "shard", admin.Text, "host", admin.Text, "role", admin.Text,
		"total_xact_count", admin.Int8, "total_query_count", admin.Int8, "total_error_count", admin.Int8,
		"total_received", admin.Int8, "total_sent", admin.Int8,
		"total_xact_time", admin.Int8, "total_query_time", admin.Int8, "total_wait_time", admin.Int8,
		"avg_xact_time", admin.Int8, "avg_query_time", admin.Int8, "avg_wait_time", admin.Int8,
		"checkout_timeouts", admin.Int8, "connect_errors", admin.Int8)
	colsClients = admin.Cols("id", admin.Int8, "user", admin.Text, "database", admin.Text, "state", admin.Text,
		"addr", admin.Text, "connect_time", admin.Text, "pool_mode", admin.Text, "shard", admin.Text, "server", admin.Text,
		"server_pid", admin.Int8, "in_transaction", admin.Bool, "pinned", admin.Bool, "prepared", admin.Int8)
	colsServers = admin.Cols("shard", admin.Text, "host", admin.Text, "role", admin.Text, "user", admin.Text, "database", admin.Text,
		"state", admin.Text, "pid", admin.Int8, "connect_time", admin.Text, "request_time", admin.Text, "client_id", admin.Int8)
	colsHosts = admin.Cols("shard", admin.Text, "host", admin.Text, "zone", admin.Text, "role", admin.Text, "primary", admin.Bool,
		"state", admin.Text, "lsn", admin.Text, "lag_bytes", admin.Int8, "lag_seconds", admin.Float8, "reads", admin.Int8,
		"primary_reads_ryw", admin.Int8, "primary_reads_lag", admin.Int8, "primary_reads_no_replica", admin.Int8,
		"ban_reason", admin.Text, "banned_for", admin.Float8, "retry_in", admin.Float8)
	colsShards = admin.Cols("index", admin.Int8, "shard", admin.Text, "primary", admin.Text, "hosts", admin.Int8,
		"replicas_up", admin.Int8, "default", admin.Bool, "paused", admin.Bool)
	colsShardMap = admin.Cols("version", admin.Int8, "distribution", admin.Text, "method", admin.Text, "key_type", admin.Text,
		"tables", admin.Text, "lower", admin.Text, "upper", admin.Text, "shard", admin.Text)
	colsPrepared = admin.Cols("client_id", admin.Int8, "name", admin.Text, "server_name", admin.Text, "query", admin.Text)
	colsConfig   = admin.Cols("key", admin.Text, "value", admin.Text)
	colsVersion  = admin.Cols("version", admin.Text)
	colsFanOuts  = admin.Cols("kind", admin.Text, "count", admin.Int8)
)

// consoleShow is one object of SHOW.
type consoleShow struct {
	name, help string
	cols       []admin.Column
	rows       func(*Server) [][]any
}

// consoleShows are the objects of SHOW, in the order SHOW HELP lists them.
// This table is the one list of them: the parser, the syntax error's
// hint, SHOW HELP, Describe and runConsole all read it, so an object
// cannot be advertised and refused, or parsed and not run.
var consoleShows = []consoleShow{
	{"POOLS", "server connection pools: clients and servers by state", colsPools, (*Server).showPools},
	{"STATS", "per pool: transactions, queries, bytes, times (us)", colsStats, (*Server).showStats},
	{"CLIENTS", "connected clients", colsClients, (*Server).showClients},
	{"SERVERS", "open server connections", colsServers, (*Server).showServers},
	{"HOSTS", "every host: role, state, LSN, replica lag, ban reason", colsHosts, (*Server).showHosts},
	{"SHARDS", "shards and their primaries", colsShards, (*Server).showShards},
	{"SHARDMAP", "the shard map in force: version and ranges", colsShardMap, (*Server).showShardMap},
	{"PREPARED", "clients' prepared statements", colsPrepared, (*Server).showPrepared},
	{"FANOUTS", "statements run over several shards, by kind", colsFanOuts, (*Server).showFanOuts},
	{"CONFIG", "the running configuration (secrets redacted)", colsConfig, (*Server).showConfig},
	{"VERSION", "shardgate's version", colsVersion, (*Server).showVersion},
}

// consoleGrammar parses console commands, its SHOW taking consoleShows.
var consoleGrammar = admin.NewGrammar(func() []admin.Object {
	out := make([]admin.Object, len(consoleShows))
	for i, sh := range consoleShows {
		out[i] = admin.Object{Name: sh.name, Help: sh.help}
	}
	return out
}())

// consoleShowOf returns the SHOW object named, nil for HELP: the parser
// lets no other name through, and HELP's rows are the grammar's.
func consoleShowOf(name string) *consoleShow {
	for i := range consoleShows {
		if consoleShows[i].name == name {
			return &consoleShows[i]
		}
	}
	return nil
}

// consoleColumns returns the columns a command's result has, nil when it
// returns no rows.
func consoleColumns(c admin.Command) []admin.Column {
	if c.Verb != admin.Show {
		return nil
	}
	if sh := consoleShowOf(c.Object); sh != nil {
		return sh.cols
	}
	return admin.HelpColumns
}

// runConsole runs one console command for session ss.
func (s *Server) runConsole(ss *session, c admin.Command) (admin.Result, error) {
	res := admin.Result{Columns: consoleColumns(c)}
	var err error
	switch c.Verb {
	case admin.Set:
		// Accepted and ignored: drivers set client_encoding and the like.
	case admin.Show:
		if sh := consoleShowOf(c.Object); sh != nil {
			res.Rows = sh.rows(s)
		} else {
			res.Rows = consoleGrammar.HelpRows()
		}
	case admin.Reload:
		res.Notices, err = s.reload()
	case admin.Pause:
		err = s.pauseCmd(c.Arg)
	case admin.Resume:
		err = s.resumeCmd(c.Arg)
	case admin.Ban, admin.Unban:
		err = s.banCmd(c.Verb == admin.Ban, c.Arg)
	case admin.Kill:
		err = s.killCmd(c.Arg)
	case admin.Shutdown:
		err = s.shutdownCmd()
	}
	return res, err
}

func (s *Server) showConfig() [][]any {
	var rows [][]any
	if f := s.o().Config; f != nil {
		for _, kv := range f() {
			rows = append(rows, []any{kv[0], kv[1]})
		}
	}
	return rows
}

func (s *Server) showVersion() [][]any {
	return [][]any{{fmt.Sprintf("shardgate %s (%s)", s.o().Version, runtime.Version())}}
}

func (s *Server) showFanOuts() [][]any {
	var rows [][]any
	for _, f := range s.FanOuts() {
		rows = append(rows, []any{f.Kind, f.Count})
	}
	return rows
}

func (s *Server) showPools() [][]any {
	var rows [][]any
	for _, p := range s.PoolStats() {
		st := p.Servers
		rows = append(rows, []any{p.Key.Database, p.Key.User, p.Shard, p.Key.Addr, p.Role,
			p.ClientsActive, st.Waiting, st.Active, st.Idle, 0, st.Login, p.Size,
			int64(st.MaxWait / time.Second), int64((st.MaxWait % time.Second) / time.Microsecond), p.Mode.String(),
			s.pause.held(p.Key.Database, p.Shard)})
	}
	return rows
}

func (s *Server) showStats() [][]any {
	var rows [][]any
	for _, p := range s.PoolStats() {
		avg := func(total time.Duration, n int64) int64 {
			if n == 0 {
				return 0
			}
			return total.Microseconds() / n
		}
		rows = append(rows, []any{p.Key.Database, p.Key.User, p.Shard, p.Key.Addr, p.Role,
			p.Xacts, p.Queries, p.Errors, p.BytesIn, p.BytesOut,
			p.XactTime.Microseconds(), p.QueryTime.Microseconds(), p.Wait.Microseconds(),
			avg(p.XactTime, p.Xacts), avg(p.QueryTime, p.Queries), avg(p.Wait, p.Servers.Checkouts),
			p.Servers.Timeouts, p.Servers.ConnectErrors})
	}
	return rows
}

func (s *Server) showClients() [][]any {
	var rows [][]any
	names := s.shardNames()
	for _, ss := range s.sortedSessions() {
		ss.mu.Lock()
		state := ss.stateLocked()
		var shard, server string
		var pid int64
		inTx := ss.begin != nil || ss.dtx != nil
		if state == clientActive {
			if l := ss.link; l != nil {
				shard, server, pid = nameOf(names, l.shard), l.be.Addr(), int64(l.be.PID)
				inTx = inTx || l.txStatus != 'I'
			} else {
				shard = "several" // a distributed transaction or a scatter
			}
		}
		row := []any{int64(ss.id), ss.userName, ss.db, state, ss.remote, ss.since, ss.mode.String(), shard, server, pid,
			inTx, ss.pinned, len(ss.stmts)}
		ss.mu.Unlock()
		rows = append(rows, row)
	}
	return rows
}

func nameOf(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return strconv.Itoa(i)
}

// sortedSessions returns the sessions by id.
func (s *Server) sortedSessions() []*session {
	all := s.allSessions()
	slices.SortFunc(all, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	return all
}

func (s *Server) showServers() [][]any {
	type key struct {
		addr string
		pid  uint32
	}
	owners := map[key]int64{}
	for _, ss := range s.allSessions() {
		ss.mu.Lock()
		if l := ss.link; l != nil {
			owners[key{l.be.Addr(), l.be.PID}] = int64(ss.id)
		}
		if d := ss.dtx; d != nil {
			for _, c := range d.conns {
				owners[key{c.be.Addr(), c.be.PID}] = int64(ss.id)
			}
		}
		ss.mu.Unlock()
	}
	roles, shards := s.hostRoles()
	var rows [][]any
	for _, p := range s.o().Pools.All() {
		k := p.Key()
		for _, c := range p.Conns() {
			var client any
			if id, ok := owners[key{c.Addr, c.PID}]; ok {
				client = id
			}
			rows = append(rows, []any{shards[k.Addr], k.Addr, roles[k.Addr], k.User, k.Database, c.State, int64(c.PID), c.Born, c.LastUsed, client})
		}
	}
	return rows
}

// hostUnmonitored is the state of a host no topology monitor checks.
const hostUnmonitored = "unmonitored"

// hosts returns every host as the topology monitor last saw it or,
// without a monitor, each shard's configured primary, unmonitored: one
// answer to "which hosts are there" for SHOW HOSTS, SHOW SHARDS and
// hostRoles.
func (o *Options) hosts() []pool.HostStatus {
	if o.Topology != nil {
		return o.Topology.Snapshot()
	}
	out := make([]pool.HostStatus, len(o.Shards))
	for i, sh := range o.Shards {
		out[i] = pool.HostStatus{Shard: sh.Name, ShardIndex: i, Addr: sh.Primary, Role: "primary", Primary: true, State: hostUnmonitored}
	}
	return out
}

func (s *Server) showHosts() [][]any {
	var rows [][]any
	for _, h := range s.o().hosts() {
		row := []any{h.Shard, h.Addr, h.Zone, h.Role, h.Primary, h.State}
		if h.State == hostUnmonitored {
			// Nothing was measured: NULLs, not zeros that read as figures.
			rows = append(rows, append(row, make([]any, len(colsHosts)-len(row))...))
			continue
		}
		var banFor, retry any
		if h.State == "banned" {
			banFor, retry = h.BannedFor.Seconds(), h.RetryIn.Seconds()
		}
		rows = append(rows, append(row, h.LSN.String(), h.LagBytes, h.Lag.Seconds(),
			int64(h.Reads), int64(h.PrimaryReadsRYW), int64(h.PrimaryReadsLag), int64(h.PrimaryReadsNoReplica),
			h.BanReason, banFor, retry))
	}
	return rows
}

func (s *Server) showShards() [][]any {
	o := s.o()
	def := s.defaultShard()
	hosts := o.hosts()
	var rows [][]any
	for i, sh := range o.Shards {
		var primary string
		n, up := 0, 0
		for _, h := range hosts {
			if h.ShardIndex != i {
				continue
			}
			n++
			if h.Primary {
				primary = h.Addr
			}
			if h.Role == "replica" && h.State == "up" {
				up++
			}
		}
		rows = append(rows, []any{i, sh.Name, primary, n, up, i == def, s.pause.held("", sh.Name)})
	}
	return rows
}

func (s *Server) showShardMap() [][]any {
	sc := s.schema.Load()
	if sc == nil {
		// No map: everything is on the first shard, as with a map
		// without distributions.
		return [][]any{{int64(0), nil, "unsharded", nil, nil, nil, nil, nameOf(s.shardNames(), 0)}}
	}
	m := sc.m
	v := int64(m.Version())
	var rows [][]any
	for _, d := range m.Distributions() {
		var tables []string
		for _, t := range d.Tables() {
			name := t.Name
			if t.Schema != "" {
				name = t.Schema + "." + t.Name
			}
			tables = append(tables, name+"("+t.Key+")")
		}
		for _, r := range m.Ranges(d) {
			rows = append(rows, []any{v, d.Name, string(d.Method), d.KeyType, strings.Join(tables, ", "), r.Lo, r.Hi, r.Shard})
		}
		if len(m.Ranges(d)) == 0 {
			rows = append(rows, []any{v, d.Name, string(d.Method), d.KeyType, strings.Join(tables, ", "), nil, nil, "directory"})
		}
	}
	if ref := m.ReferenceTables(); len(ref) > 0 {
		rows = append(rows, []any{v, "(reference)", "reference", nil, strings.Join(ref, ", "), nil, nil, "every shard"})
	}
	if len(rows) == 0 {
		rows = append(rows, []any{v, nil, "unsharded", nil, nil, nil, nil, m.Shards()[m.DefaultShard()]})
	}
	return rows
}

func (s *Server) showPrepared() [][]any {
	var rows [][]any
	for _, ss := range s.sortedSessions() {
		ss.mu.Lock()
		for name, st := range ss.stmts {
			q := st.query
			if len(q) > 200 {
				q = q[:200] + "..."
			}
			rows = append(rows, []any{int64(ss.id), name, st.server, q})
		}
		ss.mu.Unlock()
	}
	return rows
}
