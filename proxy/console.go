package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy/admin"
	"github.com/shardgate/shardgate/proxy/auth"
	"github.com/shardgate/shardgate/proxy/wire"
)

// The admin console: a client that logs in to the database named by
// Options.Admin.Database talks to the proxy itself. It speaks the simple
// and the extended protocol, so psql and any driver can use it; the
// commands are parsed by package admin and run by consolecmd.go.

// consoleRights is what a console user may do.
type consoleRights uint8

const (
	consoleNone  consoleRights = iota
	consoleStats               // SHOW only
	consoleAll
)

// rightsOf returns what a user may do in the console.
func (o *Options) rightsOf(user string) consoleRights {
	if slices.Contains(o.Admin.Users, user) {
		return consoleAll
	}
	if slices.Contains(o.Admin.StatsUsers, user) {
		return consoleStats
	}
	return consoleNone
}

// consoleParams are the parameters a console session reports at login:
// what drivers need to decode text and dates.
var consoleParams = [][2]string{
	{"server_version", "15.0 (shardgate console)"},
	{"server_encoding", "UTF8"},
	{"client_encoding", "UTF8"},
	{"DateStyle", "ISO, MDY"},
	{"integer_datetimes", "on"},
	{"standard_conforming_strings", "on"},
	{"TimeZone", "UTC"},
	{"IntervalStyle", "postgres"},
	{"is_superuser", "off"},
}

// startConsole authenticates a console client and checks its rights.
func (s *session) startConsole(st *startup) error {
	ac := &authConn{r: s.in, w: s.out}
	o := s.srv.o()
	u := o.Users[st.user]
	if u == nil {
		return auth.AuthenticateUnknown(ac, st.user, auth.MethodSCRAM)
	}
	if err := auth.Authenticate(ac, &u.Credential); err != nil {
		return err
	}
	s.user = u
	s.rights = o.rightsOf(st.user)
	if s.rights == consoleNone {
		return &Error{Code: "42501", Fatal: true,
			Message: fmt.Sprintf("permission denied: user %q may not use the admin console (database %q)", st.user, o.Admin.Database),
			Hint:    "list the user in admin.users or admin.stats_users in the shardgate config"}
	}
	wire.WriteMessage(s.out, &pgproto3.AuthenticationOk{})
	for _, p := range consoleParams {
		wire.WriteMessage(s.out, &pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	wire.WriteMessage(s.out, &pgproto3.ParameterStatus{Name: "application_name", Value: st.params["application_name"]})
	wire.WriteMessage(s.out, &pgproto3.BackendKeyData{ProcessID: s.id, SecretKey: s.secret})
	s.out.Write(rfq('I'))
	return s.out.Flush()
}

// consoleStmt is a statement prepared in the console; consolePortal a
// bound one.
type consoleStmt struct {
	cmds []admin.Command
}

type consolePortal struct {
	cmds    []admin.Command
	formats []int16
}

// console is the state of a console session's extended protocol.
type console struct {
	stmts   map[string]*consoleStmt
	portals map[string]*consolePortal
	// skipping: an error in an extended-protocol batch; ignore up to Sync.
	skipping bool
}

// serveConsole reads a console client's messages until it leaves.
func (s *session) serveConsole() error {
	c := &console{stmts: map[string]*consoleStmt{}, portals: map[string]*consolePortal{}}
	for {
		typ, n, err := s.in.Header()
		if err != nil {
			return err
		}
		if typ == 'X' {
			return nil
		}
		body, err := s.in.Body(n)
		if err != nil {
			return err
		}
		if c.skipping && typ != 'S' {
			continue
		}
		// Writes to the client hold outMu, as a KILL or a drain writes its
		// own FATAL; consoleRun lets go of it while a command runs.
		s.outMu.Lock()
		if err := s.consoleMessage(c, typ, body); err != nil {
			var pe *Error
			if errors.As(err, &pe) && pe.Fatal {
				wire.WriteMessage(s.out, errorResponse(err, true))
				s.out.Flush()
				s.outMu.Unlock()
				return err
			}
			wire.WriteMessage(s.out, consoleError(err))
			if typ == 'Q' {
				s.out.Write(rfq('I'))
			} else {
				c.skipping = true
			}
		}
		if s.in.Buffered() == 0 || typ == 'S' || typ == 'H' || typ == 'Q' {
			if err := s.out.Flush(); err != nil {
				s.outMu.Unlock()
				return err
			}
		}
		s.outMu.Unlock()
		if s.closing.Load() {
			return nil
		}
	}
}

// consoleError turns a console failure into an ErrorResponse.
func consoleError(err error) *pgproto3.ErrorResponse {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: ae.Code, Message: ae.Message, Hint: ae.Hint}
	}
	return errorResponse(err, false)
}

func (s *session) consoleMessage(c *console, typ byte, body []byte) error {
	switch typ {
	case 'Q':
		return s.consoleQuery(string(bytes.TrimSuffix(body, []byte{0})))
	case 'P':
		name, rest, ok := cutCStringBytes(body)
		q, _, ok2 := cutCStringBytes(rest)
		if !ok || !ok2 {
			return protocolViolation("Parse", nil)
		}
		cmds, err := consoleGrammar.Parse(string(q))
		if err != nil {
			return err
		}
		if len(cmds) > 1 {
			return &admin.Error{Code: "42601", Message: "cannot insert multiple commands into a prepared statement"}
		}
		c.stmts[string(name)] = &consoleStmt{cmds: cmds}
		s.out.Write(parseComplete())
	case 'B':
		var b pgproto3.Bind
		if err := b.Decode(body); err != nil {
			return protocolViolation("Bind", err)
		}
		st := c.stmts[b.PreparedStatement]
		if st == nil {
			return &admin.Error{Code: "26000", Message: fmt.Sprintf("prepared statement %q does not exist", b.PreparedStatement)}
		}
		if len(b.Parameters) > 0 {
			return &admin.Error{Code: "08P01", Message: fmt.Sprintf("bind message supplies %d parameters, but the console's commands take none", len(b.Parameters))}
		}
		if len(st.cmds) == 1 {
			if err := admin.CheckFormats(b.ResultFormatCodes, len(consoleColumns(st.cmds[0]))); err != nil {
				return err
			}
		}
		c.portals[b.DestinationPortal] = &consolePortal{cmds: st.cmds, formats: slices.Clone(b.ResultFormatCodes)}
		s.out.Write([]byte{'2', 0, 0, 0, 4})
	case 'D':
		if len(body) < 2 {
			return protocolViolation("Describe", nil)
		}
		name := string(bytes.TrimSuffix(body[1:], []byte{0}))
		var cmds []admin.Command
		var formats []int16
		if body[0] == 'S' {
			st := c.stmts[name]
			if st == nil {
				return &admin.Error{Code: "26000", Message: fmt.Sprintf("prepared statement %q does not exist", name)}
			}
			cmds = st.cmds
			wire.WriteMessage(s.out, &pgproto3.ParameterDescription{})
		} else {
			p := c.portals[name]
			if p == nil {
				return &admin.Error{Code: "34000", Message: fmt.Sprintf("portal %q does not exist", name)}
			}
			cmds, formats = p.cmds, p.formats
		}
		var cols []admin.Column
		if len(cmds) == 1 {
			cols = consoleColumns(cmds[0])
		}
		if cols == nil {
			s.out.Write([]byte{'n', 0, 0, 0, 4})
		} else {
			wire.WriteMessage(s.out, admin.RowDescription(cols, formats))
		}
	case 'E':
		name, _, ok := cutCStringBytes(body)
		if !ok {
			return protocolViolation("Execute", nil)
		}
		p := c.portals[string(name)]
		if p == nil {
			return &admin.Error{Code: "34000", Message: fmt.Sprintf("portal %q does not exist", name)}
		}
		if len(p.cmds) == 0 {
			s.out.Write([]byte{'I', 0, 0, 0, 4})
			return nil
		}
		// As from a server, Execute sends rows only: the client learnt
		// their shape from a Describe of the statement or the portal.
		return s.consoleRun(p.cmds[0], p.formats, false)
	case 'S':
		c.skipping = false
		delete(c.portals, "")
		s.out.Write(rfq('I'))
	case 'H':
	case 'C':
		if len(body) < 2 {
			return protocolViolation("Close", nil)
		}
		name := string(bytes.TrimSuffix(body[1:], []byte{0}))
		if body[0] == 'S' {
			delete(c.stmts, name)
		} else {
			delete(c.portals, name)
		}
		s.out.Write(closeComplete())
	default:
		return &Error{Code: "08P01", Fatal: true, Message: fmt.Sprintf("invalid frontend message type %d for the admin console", typ)}
	}
	return nil
}

// consoleQuery runs a simple-protocol query string: each command in turn,
// stopping at the first error.
func (s *session) consoleQuery(sql string) error {
	cmds, err := consoleGrammar.Parse(sql)
	if err != nil {
		return err
	}
	if len(cmds) == 0 {
		s.out.Write([]byte{'I', 0, 0, 0, 4})
	}
	for _, c := range cmds {
		if err := s.consoleRun(c, nil, true); err != nil {
			return err
		}
	}
	s.out.Write(rfq('I'))
	return nil
}

// consoleRun runs one command and writes its result.
func (s *session) consoleRun(c admin.Command, formats []int16, describe bool) error {
	if c.Verb != admin.Show && c.Verb != admin.Set && s.rights != consoleAll {
		return &admin.Error{Code: "42501",
			Message: fmt.Sprintf("permission denied for %s: user %q may only run SHOW commands", c.Verb, s.user.Credential.User),
			Hint:    "list the user in admin.users to allow every console command"}
	}
	s.outMu.Unlock()
	res, err := s.srv.runConsole(s, c)
	s.outMu.Lock()
	if err != nil {
		return err
	}
	for _, n := range res.Notices {
		wire.WriteMessage(s.out, &pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "00000", Message: n})
	}
	tag := res.Tag
	if tag == "" {
		tag = c.Tag()
	}
	if res.Columns != nil {
		if describe {
			wire.WriteMessage(s.out, admin.RowDescription(res.Columns, formats))
		}
		for _, r := range res.Rows {
			wire.WriteMessage(s.out, admin.DataRow(res.Columns, r, formats))
		}
		if res.Tag == "" {
			tag = "SHOW" // as pgbouncer's console answers
		}
	}
	s.out.Write(commandComplete(tag))
	return nil
}
