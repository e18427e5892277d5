package proxy

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy/wire"
)

// startupTimeout bounds the whole startup phase, so a client that connects
// and says nothing cannot hold a goroutine and a socket forever (PostgreSQL's
// authentication_timeout is one minute too).
const startupTimeout = time.Minute

// Request codes of the untyped startup-phase packets.
const (
	codeCancel  = 80877102
	codeSSL     = 80877103
	codeGSSENC  = 80877104
	majorMask   = 0xffff0000
	protoMajor3 = 3 << 16
)

// startup is what the startup phase produced: a cancel request to carry
// out, or a client ready to authenticate.
type startup struct {
	conn    net.Conn // TLS-wrapped when negotiated
	cancel  *pgproto3.CancelRequest
	user    string
	db      string
	params  map[string]string // the client's settings from the startup packet
	isTLS   bool
	unknown []string // _pq_. protocol options we do not support
	minor   uint32   // requested minor protocol version
}

// readStartup handles SSLRequest, GSSENCRequest and protocol negotiation
// until a StartupMessage or CancelRequest arrives.
func (s *Server) readStartup(c net.Conn) (*startup, error) {
	st := &startup{conn: c}
	for {
		body, err := wire.ReadStartup(st.conn)
		if err != nil {
			if errors.Is(err, wire.ErrMessageTooLarge) {
				return nil, &Error{Code: "08P01", Message: err.Error(), Fatal: true}
			}
			return nil, err
		}
		code := binary.BigEndian.Uint32(body)
		switch {
		case code == codeSSL:
			if st.isTLS {
				return nil, &Error{Code: "08P01", Message: "SSLRequest received on an encrypted connection", Fatal: true}
			}
			if s.o().TLS == nil {
				if _, err := st.conn.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := st.conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tc := tls.Server(st.conn, s.o().TLS)
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("TLS handshake: %w", err)
			}
			st.conn, st.isTLS = tc, true
		case code == codeGSSENC:
			// We offer no GSSAPI encryption; 'N' lets the client go on in
			// plain text or with TLS, as libpq expects.
			if _, err := st.conn.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case code == codeCancel:
			var cr pgproto3.CancelRequest
			if err := cr.Decode(body); err != nil {
				return nil, &Error{Code: "08P01", Message: "invalid cancel request", Fatal: true}
			}
			st.cancel = &cr
			return st, nil
		case code&majorMask == protoMajor3:
			if err := st.parseStartupMessage(body); err != nil {
				return nil, err
			}
			return st, nil
		default:
			return nil, &Error{Code: "0A000", Fatal: true, Message: fmt.Sprintf(
				"unsupported frontend protocol %d.%d: shardgate supports 3.0", code>>16, code&0xffff)}
		}
	}
}

// parseStartupMessage reads the parameters by hand rather than with
// pgproto3.StartupMessage, which rejects minor versions other than 3.0 and
// 3.2; PostgreSQL accepts any 3.x and negotiates it down.
func (st *startup) parseStartupMessage(body []byte) error {
	st.minor = binary.BigEndian.Uint32(body) & 0xffff
	st.params = map[string]string{}
	rest := body[4:]
	for len(rest) > 0 && rest[0] != 0 {
		k, r1, ok1 := cutCString(rest)
		v, r2, ok2 := cutCString(r1)
		if !ok1 || !ok2 {
			return &Error{Code: "08P01", Message: "invalid startup packet layout: expected terminator as last byte", Fatal: true}
		}
		rest = r2
		switch {
		case k == "user":
			st.user = v
		case k == "database":
			st.db = v
		case k == "options":
			if err := parseOptions(v, st.params); err != nil {
				return err
			}
		case k == "replication":
			if v != "false" && v != "0" && v != "off" && v != "no" {
				return &Error{Code: "0A000", Fatal: true, Message: "shardgate does not proxy replication connections; connect to the server directly"}
			}
		case strings.HasPrefix(k, "_pq_."):
			st.unknown = append(st.unknown, k)
		default:
			st.params[strings.ToLower(k)] = v
		}
	}
	if st.user == "" {
		return &Error{Code: "28000", Message: "no PostgreSQL user name specified in startup packet", Fatal: true}
	}
	if st.db == "" {
		st.db = st.user
	}
	return nil
}

// parseOptions reads "-c name=value" and "--name=value" switches from the
// options startup parameter, with backslash-escaped spaces, as the server
// does.
func parseOptions(opts string, into map[string]string) error {
	var args []string
	var cur strings.Builder
	esc := false
	for _, r := range opts {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == ' ' || r == '\t' || r == '\n':
			if cur.Len() > 0 {
				args = append(args, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		args = append(args, cur.String())
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var kv string
		switch {
		case a == "-c" && i+1 < len(args):
			i++
			kv = args[i]
		case strings.HasPrefix(a, "-c"):
			kv = a[2:]
		case strings.HasPrefix(a, "--"):
			kv = a[2:]
		default:
			return &Error{Code: "08P01", Fatal: true, Message: fmt.Sprintf("invalid command-line argument for server process: %s", a),
				Hint: "shardgate accepts only -c name=value and --name=value in options"}
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return &Error{Code: "42601", Fatal: true, Message: fmt.Sprintf("-c %s requires a value", kv)}
		}
		into[strings.ToLower(strings.ReplaceAll(k, "-", "_"))] = v
	}
	return nil
}

func cutCString(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}

// handleCancel forwards a cancel request to the server running the
// client's query, if the key matches and a query is running. Per the
// protocol, the requester gets no reply either way.
func (s *Server) handleCancel(cr *pgproto3.CancelRequest) {
	ss := s.lookup(cr.ProcessID)
	if ss == nil || subtle.ConstantTimeCompare(ss.secret, cr.SecretKey) != 1 {
		return
	}
	ss.cancelQuery()
}

// authConn adapts a client connection to the auth package's needs.
type authConn struct {
	r *wire.Reader
	w *bufio.Writer
}

func (a *authConn) Send(msg pgproto3.BackendMessage) error {
	if err := wire.WriteMessage(a.w, msg); err != nil {
		return err
	}
	return a.w.Flush()
}

func (a *authConn) Receive() ([]byte, error) {
	typ, n, err := a.r.Header()
	if err != nil {
		return nil, err
	}
	if typ != 'p' {
		_ = a.r.Skip(n)
		return nil, &Error{Code: "08P01", Fatal: true, Message: fmt.Sprintf("expected password response, got message type %q", typ)}
	}
	b, err := a.r.Body(n)
	if err != nil {
		return nil, err
	}
	// The auth package may keep the body past the next read.
	return append([]byte(nil), b...), nil
}
