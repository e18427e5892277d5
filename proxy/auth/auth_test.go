package auth

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy/tlsconf"
)

// pencilVerifier is the SCRAM secret for password "pencil" with the salt of
// the RFC 7677 example, in the format Postgres stores.
const pencilVerifier = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" +
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

// frameConn is the Conn a session would offer: it reads raw frames from the
// socket, which is safe here because the client sends nothing unprompted,
// so the Backend used for the startup message has nothing buffered.
type frameConn struct {
	backend *pgproto3.Backend
	r       io.Reader
}

func (c *frameConn) Send(msg pgproto3.BackendMessage) error {
	c.backend.Send(msg)
	return c.backend.Flush()
}

func (c *frameConn) Receive() ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != 'p' {
		return nil, &Error{Code: CodeProtocolViolation, Message: fmt.Sprintf("expected password response, got message type %d", hdr[0])}
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > 65535+4 {
		return nil, &Error{Code: CodeProtocolViolation, Message: "invalid message length"}
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// testServer speaks just enough of the protocol for pgconn.Connect: startup,
// optional TLS, authentication, then the messages that end the startup
// sequence.
type testServer struct {
	addr    string
	creds   map[string]*Credential
	unknown Method
	tls     *tls.Config
	results chan error
}

func startServer(t *testing.T, creds map[string]*Credential, unknown Method, tlsConf *tls.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &testServer{addr: ln.Addr().String(), creds: creds, unknown: unknown, tls: tlsConf, results: make(chan error, 8)}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(nc)
		}
	}()
	return s
}

func (s *testServer) serve(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	var conn net.Conn = nc
	backend := pgproto3.NewBackend(conn, conn)
	msg, err := backend.ReceiveStartupMessage()
	if _, ok := msg.(*pgproto3.SSLRequest); ok && err == nil {
		if s.tls == nil {
			conn.Write([]byte("N"))
		} else {
			conn.Write([]byte("S"))
			conn = tls.Server(conn, s.tls)
		}
		backend = pgproto3.NewBackend(conn, conn)
		msg, err = backend.ReceiveStartupMessage()
	}
	startup, ok := msg.(*pgproto3.StartupMessage)
	if err != nil || !ok {
		s.results <- fmt.Errorf("startup: %T, %v", msg, err)
		return
	}

	user := startup.Parameters["user"]
	c := &frameConn{backend: backend, r: conn}
	if cred, ok := s.creds[user]; ok {
		err = Authenticate(c, cred)
	} else {
		err = AuthenticateUnknown(c, user, s.unknown)
	}
	s.results <- err
	if err != nil {
		if ae, ok := errors.AsType[*Error](err); ok && ae.Code != CodeConnectionFailure {
			backend.Send(ae.Response())
			backend.Flush()
		}
		return
	}
	backend.Send(&pgproto3.AuthenticationOk{})
	backend.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "17.0"})
	backend.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
	backend.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if backend.Flush() == nil {
		io.Copy(io.Discard, conn) // until the client's Terminate and close
	}
}

func (s *testServer) connect(t *testing.T, user, password string, useTLS bool) error {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.addr)
	sslmode := "disable"
	if useTLS {
		sslmode = "require"
	}
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s dbname=db sslmode=%s", host, port, sslmode))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = user
	cfg.Password = password
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err == nil {
		conn.Close(ctx)
	}
	return err
}

func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := tlsconf.WriteSelfSigned(cert, key, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	conf, err := tlsconf.ServerConfig(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func mustVerifier(t *testing.T, password string) string {
	t.Helper()
	v, err := NewVerifier(password, 0)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAuthenticateWithPgconn(t *testing.T) {
	t.Parallel()
	tlsConf := testTLSConfig(t)
	tests := []struct {
		name     string
		cred     *Credential // nil: the user is unknown to the server
		prepare  bool
		unknown  Method
		user     string
		password string
		tls      bool
		wantFail bool
	}{
		{name: "scram plaintext", cred: &Credential{Password: "s3cret"}, prepare: true, password: "s3cret"},
		{name: "scram plaintext unprepared", cred: &Credential{Password: "s3cret"}, password: "s3cret"},
		{name: "scram default method name", cred: &Credential{Method: "SCRAM-SHA-256", Password: "s3cret"}, prepare: true, password: "s3cret"},
		{name: "scram NewVerifier", cred: &Credential{Method: MethodSCRAM, Verifier: mustVerifier(t, "s3cret")}, prepare: true, password: "s3cret"},
		{name: "scram RFC 7677 verifier", cred: &Credential{Verifier: pencilVerifier}, prepare: true, password: "pencil"},
		{name: "scram non-ASCII", cred: &Credential{Password: "pässwörd"}, prepare: true, password: "pässwörd"},
		{name: "scram over TLS", cred: &Credential{Password: "s3cret"}, prepare: true, password: "s3cret", tls: true},
		{name: "scram wrong", cred: &Credential{Password: "s3cret"}, prepare: true, password: "guess", wantFail: true},
		{name: "scram wrong verifier", cred: &Credential{Verifier: pencilVerifier}, prepare: true, password: "crayon", wantFail: true},
		{name: "scram misconfigured", cred: &Credential{Method: MethodSCRAM, MD5Hash: MD5Hash("u", "s3cret")}, password: "s3cret", wantFail: true},
		{name: "md5 password", cred: &Credential{Method: MethodMD5, Password: "s3cret"}, prepare: true, password: "s3cret"},
		{name: "md5 hash", cred: &Credential{Method: MethodMD5, MD5Hash: MD5Hash("u", "s3cret")}, prepare: true, password: "s3cret"},
		{name: "md5 unprepared", cred: &Credential{Method: MethodMD5, Password: "s3cret"}, password: "s3cret"},
		{name: "md5 wrong", cred: &Credential{Method: MethodMD5, Password: "s3cret"}, prepare: true, password: "guess", wantFail: true},
		{name: "cleartext", cred: &Credential{Method: MethodPassword, Password: "s3cret"}, prepare: true, password: "s3cret"},
		{name: "cleartext over TLS", cred: &Credential{Method: MethodPassword, Password: "s3cret"}, prepare: true, password: "s3cret", tls: true},
		{name: "cleartext vs verifier", cred: &Credential{Method: MethodPassword, Verifier: mustVerifier(t, "s3cret")}, prepare: true, password: "s3cret"},
		{name: "cleartext vs md5 hash", cred: &Credential{Method: MethodPassword, MD5Hash: MD5Hash("u", "s3cret")}, prepare: true, password: "s3cret"},
		{name: "cleartext wrong", cred: &Credential{Method: MethodPassword, Password: "s3cret"}, prepare: true, password: "guess", wantFail: true},
		{name: "cleartext wrong vs verifier", cred: &Credential{Method: MethodPassword, Verifier: mustVerifier(t, "s3cret")}, prepare: true, password: "guess", wantFail: true},
		{name: "cleartext empty", cred: &Credential{Method: MethodPassword, Password: "s3cret"}, prepare: true, password: "", wantFail: true},
		{name: "trust", cred: &Credential{Method: MethodTrust}, prepare: true, password: "anything"},
		{name: "unknown scram", unknown: MethodSCRAM, password: "s3cret", wantFail: true},
		{name: "unknown md5", unknown: MethodMD5, password: "s3cret", wantFail: true},
		{name: "unknown password", unknown: MethodPassword, password: "s3cret", wantFail: true},
		{name: "unknown trust", unknown: MethodTrust, password: "s3cret", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := "u"
			if tt.cred != nil && tt.cred.Verifier == pencilVerifier {
				user = "user"
			}
			creds := map[string]*Credential{}
			if tt.cred != nil {
				tt.cred.User = user
				if tt.prepare {
					if err := tt.cred.Prepare(); err != nil {
						t.Fatalf("Prepare: %v", err)
					}
				}
				creds[user] = tt.cred
			}
			s := startServer(t, creds, tt.unknown, tlsConf)

			err := s.connect(t, user, tt.password, tt.tls)
			serverErr := <-s.results
			if !tt.wantFail {
				if err != nil || serverErr != nil {
					t.Fatalf("client: %v; server: %v", err, serverErr)
				}
				return
			}
			wantMsg := `password authentication failed for user "` + user + `"`
			ae, ok := errors.AsType[*Error](serverErr)
			if !ok || ae.Code != CodeInvalidPassword || ae.Message != wantMsg {
				t.Fatalf("server error = %#v, want 28P01 %q", serverErr, wantMsg)
			}
			pgErr, ok := errors.AsType[*pgconn.PgError](err)
			if !ok || pgErr.Code != CodeInvalidPassword || pgErr.Message != wantMsg || pgErr.Severity != "FATAL" {
				t.Fatalf("client error = %v, want 28P01 %q", err, wantMsg)
			}
		})
	}
}

// TestUnknownUserLooksReal checks that what a client can observe of a mock
// SCRAM exchange has the shape of a real one: stable salt per name, default
// iterations, same failure.
func TestUnknownUserLooksReal(t *testing.T) {
	t.Parallel()
	serverFirst := func(run func(Conn) error) (string, error) {
		c := &scriptedConn{in: [][]byte{
			saslInitialBody(scramMechanism, "n,,n=,r=clientnonce"),
			[]byte("c=biws,r=bogus,p=" + strings.Repeat("A", 43) + "="),
		}}
		err := run(c)
		if len(c.sent) < 2 {
			t.Fatalf("sent %d messages", len(c.sent))
		}
		sasl := c.sent[0].(*pgproto3.AuthenticationSASL)
		if len(sasl.AuthMechanisms) != 1 || sasl.AuthMechanisms[0] != scramMechanism {
			t.Fatalf("mechanisms %v", sasl.AuthMechanisms)
		}
		return string(c.sent[1].(*pgproto3.AuthenticationSASLContinue).Data), err
	}
	saltIter := func(sf string) string {
		_, after, _ := strings.Cut(sf, ",s=")
		return after
	}

	known := &Credential{User: "alice", Password: "pw"}
	if err := known.Prepare(); err != nil {
		t.Fatal(err)
	}
	realFirst, _ := serverFirst(func(c Conn) error { return Authenticate(c, known) })
	mock1, err1 := serverFirst(func(c Conn) error { return AuthenticateUnknown(c, "mallory", MethodSCRAM) })
	mock2, _ := serverFirst(func(c Conn) error { return AuthenticateUnknown(c, "mallory", "") })
	other, _ := serverFirst(func(c Conn) error { return AuthenticateUnknown(c, "trudy", MethodSCRAM) })

	if saltIter(mock1) != saltIter(mock2) {
		t.Errorf("mock salt not stable: %q vs %q", mock1, mock2)
	}
	if saltIter(mock1) == saltIter(other) {
		t.Errorf("different users share a mock salt: %q", mock1)
	}
	if len(saltIter(mock1)) != len(saltIter(realFirst)) || !strings.HasSuffix(mock1, ",i=4096") {
		t.Errorf("mock %q does not look like real %q", mock1, realFirst)
	}
	// The bogus nonce is caught before the proof for real and mock users alike.
	if ae, ok := errors.AsType[*Error](err1); !ok || ae.Code != CodeProtocolViolation {
		t.Errorf("mock with bad nonce: %v", err1)
	}
}
