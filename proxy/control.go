package proxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/router"
)

// controlPrefix starts the names of the settings shardgate itself answers
// (SET/SHOW shardgate.role, shardgate.causal_lsn, SHOW shardgate.hosts).
const controlPrefix = "shardgate."

// control answers SET and SHOW of shardgate's own settings; done reports
// whether the query was one of them.
func (s *session) control(a *router.Analysis) (done bool, err error) {
	ours := 0
	for i := range a.Statements {
		if controlName(&a.Statements[i]) != "" {
			ours++
		}
	}
	if ours == 0 {
		return false, nil
	}
	if len(a.Statements) > 1 {
		return true, s.reject('Q', &Error{Code: "0A000",
			Message: "SET and SHOW of shardgate.* settings must be sent as a query of their own",
			Hint:    "send the shardgate statement separately from the others"})
	}
	st := &a.Statements[0]
	name := controlName(st)
	if st.Command == router.CmdShow {
		return true, s.show(name)
	}
	if err := s.set(name, st.Set); err != nil {
		return true, s.reject('Q', err)
	}
	tag := "SET"
	if st.Set.Reset {
		tag = "RESET"
	}
	return true, s.reply(append(commandComplete(tag), rfq(s.txStatus())...))
}

// controlName returns the shardgate setting a statement sets or shows, or
// "".
func controlName(st *router.Statement) string {
	switch {
	case st.Command == router.CmdShow && strings.HasPrefix(st.Show, controlPrefix):
		return st.Show
	case st.Command == router.CmdSet && st.Set != nil && strings.HasPrefix(st.Set.Name, controlPrefix):
		return st.Set.Name
	}
	return ""
}

func unknownControl(name string) error {
	return &Error{Code: "42704", Message: fmt.Sprintf("unrecognized configuration parameter %q", name),
		Hint: "shardgate knows shardgate.role, shardgate.shard, shardgate.causal_lsn and (SHOW only) shardgate.hosts"}
}

func (s *session) set(name string, e *router.SetEffect) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch name {
	case "shardgate.role":
		if e.Reset {
			s.role = roleAuto
			return nil
		}
		switch strings.ToLower(e.Value) {
		case "auto":
			s.role = roleAuto
		case "primary":
			s.role = rolePrimary
		case "replica":
			s.role = roleReplica
		default:
			return &Error{Code: "22023", Message: fmt.Sprintf("invalid value for shardgate.role: %q", e.Value),
				Hint: "expected primary, replica or auto"}
		}
		return nil
	case "shardgate.causal_lsn":
		if e.Reset {
			s.causal = nil
			return nil
		}
		// Raised only: a position handed over from another connection must
		// not weaken what this one already owes its client.
		return s.causal.set(e.Value, s.shardNames())
	case "shardgate.shard":
		if e.Reset || e.Value == "" || strings.EqualFold(e.Value, "auto") {
			s.shard = ""
			return nil
		}
		names := s.shardNames()
		if !slices.Contains(names, e.Value) {
			return &Error{Code: "22023", Message: fmt.Sprintf("invalid value for shardgate.shard: %q is not a shard", e.Value),
				Hint: "known shards: " + strings.Join(names, ", ") + "; auto (or RESET) routes by the shard map again"}
		}
		s.shard = e.Value
		return nil
	case "shardgate.hosts":
		return &Error{Code: "55P02", Message: "parameter \"shardgate.hosts\" cannot be changed"}
	}
	return unknownControl(name)
}

func (s *session) show(name string) error {
	var cols []string
	var rows [][]string
	s.mu.Lock()
	switch name {
	case "shardgate.role":
		cols, rows = []string{"role"}, [][]string{{[]string{"auto", "primary", "replica"}[s.role]}}
	case "shardgate.causal_lsn":
		cols, rows = []string{"causal_lsn"}, [][]string{{s.causal.format(s.shardNames())}}
	case "shardgate.shard":
		v := s.shard
		if v == "" {
			v = "auto"
		}
		cols, rows = []string{"shard"}, [][]string{{v}}
	}
	s.mu.Unlock()
	if name == "shardgate.hosts" {
		cols, rows = s.srv.hostRows()
	}
	if cols == nil {
		return s.reject('Q', unknownControl(name))
	}
	return s.reply(append(resultSet(cols, rows, "SHOW"), rfq(s.txStatus())...))
}

// hostRows describes every host for SHOW shardgate.hosts.
func (s *Server) hostRows() ([]string, [][]string) {
	cols := []string{"shard", "host", "zone", "role", "state", "lsn", "lag_bytes", "lag_ms",
		"reads", "primary_reads_ryw", "primary_reads_lag", "primary_reads_no_replica", "banned_ms", "last_error"}
	var rows [][]string
	if s.o().Topology == nil {
		for _, sh := range s.o().Shards {
			rows = append(rows, []string{sh.Name, sh.Primary, "", "primary", "unmonitored", "", "", "", "", "", "", "", "", ""})
		}
		return cols, rows
	}
	for _, h := range s.o().Topology.Snapshot() {
		rows = append(rows, []string{h.Shard, h.Addr, h.Zone, h.Role, h.State, h.LSN.String(),
			strconv.FormatInt(h.LagBytes, 10), strconv.FormatInt(h.Lag.Milliseconds(), 10),
			strconv.FormatUint(h.Reads, 10), strconv.FormatUint(h.PrimaryReadsRYW, 10),
			strconv.FormatUint(h.PrimaryReadsLag, 10), strconv.FormatUint(h.PrimaryReadsNoReplica, 10),
			strconv.FormatInt(h.BannedFor.Milliseconds(), 10), h.LastError})
	}
	return cols, rows
}

// resultSet encodes a text result: RowDescription, DataRows and the
// command tag.
func resultSet(cols []string, rows [][]string, tag string) []byte {
	rd := &pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(cols))}
	for i, c := range cols {
		rd.Fields[i] = pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}
	}
	out, _ := rd.Encode(nil)
	for _, r := range rows {
		dr := &pgproto3.DataRow{Values: make([][]byte, len(r))}
		for i, v := range r {
			dr.Values[i] = []byte(v)
		}
		out, _ = dr.Encode(out)
	}
	if tag == "SELECT" {
		tag = fmt.Sprintf("SELECT %d", len(rows))
	}
	return append(out, commandComplete(tag)...)
}
