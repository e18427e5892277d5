package auth

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// scriptedConn replays client message bodies and records what was sent.
type scriptedConn struct {
	in   [][]byte
	sent []pgproto3.BackendMessage
	// respond, if set, computes the next body from what was sent so far,
	// for exchanges whose answers depend on the server's nonce.
	respond func(sent []pgproto3.BackendMessage) []byte
}

func (c *scriptedConn) Send(msg pgproto3.BackendMessage) error {
	c.sent = append(c.sent, msg)
	return nil
}

func (c *scriptedConn) Receive() ([]byte, error) {
	if len(c.in) > 0 {
		b := c.in[0]
		c.in = c.in[1:]
		return b, nil
	}
	if c.respond != nil {
		return c.respond(c.sent), nil
	}
	return nil, io.EOF
}

func encodeBody(t testing.TB, msg pgproto3.FrontendMessage) []byte {
	b, err := msg.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b[5:]
}

func saslInitialBody(mech, data string) []byte {
	b, _ := (&pgproto3.SASLInitialResponse{AuthMechanism: mech, Data: []byte(data)}).Encode(nil)
	return b[5:]
}

// clientFinalFor plays the client's part given the server-first-message,
// so tests can reach the checks that follow a valid proof.
func clientFinalFor(t *testing.T, password, gs2, clientFirstBare, serverFirst string) string {
	t.Helper()
	var nonce, saltB64, iterStr string
	for attr := range strings.SplitSeq(serverFirst, ",") {
		switch attr[:2] {
		case "r=":
			nonce = attr[2:]
		case "s=":
			saltB64 = attr[2:]
		case "i=":
			iterStr = attr[2:]
		}
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil {
		t.Fatal(err)
	}
	iter, err := strconv.Atoi(iterStr)
	if err != nil {
		t.Fatal(err)
	}
	salted, err := pbkdf2.Key(sha256.New, saslPrep(password), salt, iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2)) + ",r=" + nonce
	authMessage := clientFirstBare + "," + serverFirst + "," + withoutProof
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	proof := hmacSHA256(storedKey[:], authMessage)
	subtle.XORBytes(proof, proof, clientKey)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
}

// TestRFC7677 replays the SCRAM-SHA-256 example exchange of RFC 7677
// section 3, which pins the key derivation, proof check and signature.
func TestRFC7677(t *testing.T) {
	v, err := ParseVerifier(pencilVerifier)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := deriveVerifier("pencil", v.Salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if derived.String() != pencilVerifier {
		t.Fatalf("derived %s, want %s", derived, pencilVerifier)
	}

	const serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	c := &scriptedConn{in: [][]byte{
		saslInitialBody(scramMechanism, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
		[]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
	}}
	if err := scramExchange(c, "user", v, nil, serverNonce); err != nil {
		t.Fatal(err)
	}
	wantFirst := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	if got := string(c.sent[1].(*pgproto3.AuthenticationSASLContinue).Data); got != wantFirst {
		t.Errorf("server-first %q, want %q", got, wantFirst)
	}
	wantFinal := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	if got := string(c.sent[2].(*pgproto3.AuthenticationSASLFinal).Data); got != wantFinal {
		t.Errorf("server-final %q, want %q", got, wantFinal)
	}
}

func TestSCRAMNoInitialResponse(t *testing.T) {
	const bare = "n=,r=abcdef"
	cred := &Credential{User: "u", Password: "pw"}
	if err := cred.Prepare(); err != nil {
		t.Fatal(err)
	}
	initial, _ := (&pgproto3.SASLInitialResponse{AuthMechanism: scramMechanism}).Encode(nil)
	initial = initial[5:]
	// Encode writes length 0 for no data; a client deferring its first
	// message sends -1.
	copy(initial[len(scramMechanism)+1:], []byte{0xff, 0xff, 0xff, 0xff})
	c := &scriptedConn{in: [][]byte{initial, []byte("n,," + bare)}}
	c.respond = func(sent []pgproto3.BackendMessage) []byte {
		sf := string(sent[len(sent)-1].(*pgproto3.AuthenticationSASLContinue).Data)
		return []byte(clientFinalFor(t, "pw", "n,,", bare, sf))
	}
	if err := Authenticate(c, cred); err != nil {
		t.Fatal(err)
	}
	if len(c.sent[1].(*pgproto3.AuthenticationSASLContinue).Data) != 0 {
		t.Error("expected an empty SASLContinue asking for the client-first-message")
	}
}

func TestSCRAMProtocolErrors(t *testing.T) {
	const bare = "n=,r=abcdef"
	proofless := "c=biws,r=abcdef"
	tests := []struct {
		name    string
		initial []byte
		final   func(t *testing.T, serverFirst string) string
		code    string
		msg     string
	}{
		{name: "wrong mechanism", initial: saslInitialBody("PLAIN", "x"), msg: "client selected an invalid SASL authentication mechanism"},
		{name: "plus", initial: saslInitialBody(scramMechanismPlus, "p=tls-server-end-point,,"+bare), msg: "SCRAM-SHA-256-PLUS"},
		{name: "length mismatch", initial: append(saslInitialBody(scramMechanism, "n,,"+bare), 'x'), msg: "length mismatch"},
		{name: "truncated initial", initial: []byte("SCRAM-SHA-256\x00\x00"), msg: "malformed SASLInitialResponse"},
		{name: "channel binding requested", initial: saslInitialBody(scramMechanism, "p=tls-server-end-point,,"+bare), msg: "channel binding"},
		{name: "bad flag", initial: saslInitialBody(scramMechanism, "x,,"+bare), msg: "channel-binding flag"},
		{name: "authzid", initial: saslInitialBody(scramMechanism, "n,a=bob,"+bare), code: CodeFeatureNotSupported, msg: "authorization identity"},
		{name: "mandatory extension", initial: saslInitialBody(scramMechanism, "n,,m=x,"+bare), code: CodeFeatureNotSupported, msg: "extension"},
		{name: "missing user", initial: saslInitialBody(scramMechanism, "n,,r=abc"), msg: `"n"`},
		{name: "empty nonce", initial: saslInitialBody(scramMechanism, "n,,n=,r="), msg: "nonce"},
		{name: "empty first", initial: saslInitialBody(scramMechanism, ""), msg: "empty"},
		{name: "NUL in first", initial: saslInitialBody(scramMechanism, "n,,n=\x00,r=abc"), msg: "NUL"},
		{
			name:    "binding flag changed",
			initial: saslInitialBody(scramMechanism, "n,,"+bare),
			final: func(t *testing.T, sf string) string {
				return strings.Replace(clientFinalFor(t, "pw", "n,,", bare, sf), "c=biws", "c=eSws", 1)
			},
			msg: "channel-binding attribute",
		},
		{
			name:    "nonce mismatch",
			initial: saslInitialBody(scramMechanism, "n,,"+bare),
			final: func(t *testing.T, sf string) string {
				return proofless + "x,p=" + strings.Repeat("A", 43) + "="
			},
			msg: "nonce mismatch",
		},
		{
			name:    "no proof",
			initial: saslInitialBody(scramMechanism, "n,,"+bare),
			final:   func(t *testing.T, sf string) string { return proofless },
			msg:     `"p"`,
		},
		{
			name:    "short proof",
			initial: saslInitialBody(scramMechanism, "n,,"+bare),
			final:   func(t *testing.T, sf string) string { return proofless + ",p=AAAA" },
			msg:     "proof",
		},
		{
			name:    "garbage after proof",
			initial: saslInitialBody(scramMechanism, "n,,"+bare),
			final: func(t *testing.T, sf string) string {
				return clientFinalFor(t, "pw", "n,,", bare, sf) + ",x=1"
			},
			msg: "garbage",
		},
		{
			name:    "wrong password",
			initial: saslInitialBody(scramMechanism, "n,,"+bare),
			final: func(t *testing.T, sf string) string {
				return clientFinalFor(t, "other", "n,,", bare, sf)
			},
			code: CodeInvalidPassword,
			msg:  `password authentication failed for user "u"`,
		},
	}
	cred := &Credential{User: "u", Password: "pw"}
	if err := cred.Prepare(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &scriptedConn{in: [][]byte{tt.initial}}
			if tt.final != nil {
				c.respond = func(sent []pgproto3.BackendMessage) []byte {
					sf := string(sent[len(sent)-1].(*pgproto3.AuthenticationSASLContinue).Data)
					return []byte(tt.final(t, sf))
				}
			}
			err := Authenticate(c, cred)
			wantCode := tt.code
			if wantCode == "" {
				wantCode = CodeProtocolViolation
			}
			ae, ok := errors.AsType[*Error](err)
			if !ok || ae.Code != wantCode || !strings.Contains(ae.Message, tt.msg) {
				t.Fatalf("got %v, want %s containing %q", err, wantCode, tt.msg)
			}
			if _, ok := c.sent[len(c.sent)-1].(*pgproto3.AuthenticationSASLFinal); ok {
				t.Fatal("sent SASLFinal on failure")
			}
		})
	}
}

func TestGS2HeaderY(t *testing.T) {
	const bare = "n=,r=abcdef"
	cred := &Credential{User: "u", Password: "pw"}
	c := &scriptedConn{in: [][]byte{saslInitialBody(scramMechanism, "y,,"+bare)}}
	c.respond = func(sent []pgproto3.BackendMessage) []byte {
		sf := string(sent[len(sent)-1].(*pgproto3.AuthenticationSASLContinue).Data)
		return []byte(clientFinalFor(t, "pw", "y,,", bare, sf))
	}
	if err := Authenticate(c, cred); err != nil {
		t.Fatal(err)
	}
}

func TestConnErrors(t *testing.T) {
	cred := &Credential{User: "u", Method: MethodMD5, Password: "pw"}
	err := Authenticate(&scriptedConn{}, cred)
	if ae, ok := errors.AsType[*Error](err); !ok || ae.Code != CodeConnectionFailure || !errors.Is(err, io.EOF) {
		t.Errorf("EOF: got %v", err)
	}

	own := &Error{Code: CodeProtocolViolation, Message: "expected password response, got message type 81"}
	err = Authenticate(connFunc(func() ([]byte, error) { return nil, own }), cred)
	if err != own {
		t.Errorf("Conn's *Error not passed through: %v", err)
	}

	bad := &scriptedConn{in: [][]byte{[]byte("no terminator")}}
	err = Authenticate(bad, cred)
	if ae, ok := errors.AsType[*Error](err); !ok || ae.Code != CodeProtocolViolation || ae.Message != "invalid password packet size" {
		t.Errorf("unterminated password: got %v", err)
	}
	bad = &scriptedConn{in: [][]byte{[]byte("two\x00strings\x00")}}
	if err = Authenticate(bad, cred); err == nil {
		t.Error("embedded NUL accepted")
	}
}

type connFunc func() ([]byte, error)

func (connFunc) Send(pgproto3.BackendMessage) error { return nil }
func (f connFunc) Receive() ([]byte, error)         { return f() }

func TestMD5(t *testing.T) {
	// Computed independently: printf 'secretalice' | md5sum
	if got := MD5Hash("alice", "secret"); got != "md54a0a68b43b6cd5cf266fa02f196e2371" {
		t.Errorf("MD5Hash = %s", got)
	}
	cred := &Credential{User: "alice", Method: MethodMD5, Password: "secret"}
	c := &scriptedConn{respond: func(sent []pgproto3.BackendMessage) []byte {
		salt := sent[0].(*pgproto3.AuthenticationMD5Password).Salt
		return encodeBody(t, &pgproto3.PasswordMessage{Password: md5Response(MD5Hash("alice", "secret"), salt)})
	}}
	if err := Authenticate(c, cred); err != nil {
		t.Fatal(err)
	}
}

func TestVerifierParsing(t *testing.T) {
	s, err := NewVerifier("pw", 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVerifier(s)
	if err != nil {
		t.Fatal(err)
	}
	if v.String() != s || v.Iterations != DefaultIterations || len(v.Salt) != 16 || !v.matches("pw") || v.matches("pW") {
		t.Errorf("round trip of %s gave %+v", s, v)
	}
	if s, err = NewVerifier("pw", 10); err != nil || !strings.HasPrefix(s, "SCRAM-SHA-256$10:") {
		t.Errorf("NewVerifier(10) = %q, %v", s, err)
	}
	if _, err = NewVerifier("pw", -1); err == nil {
		t.Error("negative iterations accepted")
	}

	key := strings.Repeat("A", 43) + "="
	for _, bad := range []string{
		"",
		"md5abc",
		"SCRAM-SHA-256$4096:c2FsdA==",
		"SCRAM-SHA-256$4096c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$4096:c2FsdA==$" + key + key,
		"SCRAM-SHA-256$0:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$x:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$4096:$" + key + ":" + key,
		"SCRAM-SHA-256$4096:c2FsdA=$" + key + ":" + key,
		"SCRAM-SHA-256$4096:c2FsdA==$AAAA:" + key,
		"SCRAM-SHA-256$4096:c2FsdA==$" + key + ":AAAA",
		"SCRAM-SHA-1$4096:c2FsdA==$" + key + ":" + key,
	} {
		if _, err := ParseVerifier(bad); err == nil {
			t.Errorf("ParseVerifier(%q) accepted", bad)
		}
	}
}

func TestPrepare(t *testing.T) {
	verifier := mustVerifier(t, "pw")
	tests := []struct {
		name    string
		cred    Credential
		wantErr string
	}{
		{name: "scram from md5 hash", cred: Credential{User: "u", MD5Hash: MD5Hash("u", "pw")}, wantErr: "not only an md5 hash"},
		{name: "md5 from verifier", cred: Credential{User: "u", Method: MethodMD5, Verifier: verifier}, wantErr: "not only a SCRAM verifier"},
		{name: "no password", cred: Credential{User: "u"}, wantErr: "no password"},
		{name: "no password cleartext", cred: Credential{User: "u", Method: MethodPassword}, wantErr: "no password"},
		{name: "no user", cred: Credential{Password: "pw"}, wantErr: "no user"},
		{name: "bad method", cred: Credential{User: "u", Method: "ldap", Password: "pw"}, wantErr: "unknown authentication method"},
		{name: "bad verifier", cred: Credential{User: "u", Verifier: "SCRAM-SHA-256$"}, wantErr: "SCRAM verifier"},
		{name: "bad md5 hash", cred: Credential{User: "u", Method: MethodMD5, MD5Hash: "md5ABC"}, wantErr: "md5 hash"},
		{name: "trust needs nothing", cred: Credential{User: "u", Method: MethodTrust}},
		{name: "cleartext from verifier", cred: Credential{User: "u", Method: MethodPassword, Verifier: verifier}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cred.Prepare()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
			}
		})
	}

	c := Credential{User: "u", Password: "pw"}
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	if c.Method != MethodSCRAM || c.verifier == nil || c.Verifier != c.verifier.String() || !c.verifier.matches("pw") {
		t.Errorf("Prepare did not fill the verifier: %+v", c)
	}
	m := Credential{User: "u", Method: MethodMD5, Password: "pw"}
	if err := m.Prepare(); err != nil || m.MD5Hash != MD5Hash("u", "pw") {
		t.Errorf("Prepare md5: %v, %q", err, m.MD5Hash)
	}
}

func TestMisconfiguredCredentialFailsLikeWrongPassword(t *testing.T) {
	cred := &Credential{User: "u", Method: MethodMD5, Verifier: mustVerifier(t, "pw")}
	c := &scriptedConn{in: [][]byte{encodeBody(t, &pgproto3.PasswordMessage{Password: "md5whatever"})}}
	err := Authenticate(c, cred)
	ae, ok := errors.AsType[*Error](err)
	if !ok || ae.Code != CodeInvalidPassword || ae.Err == nil || !strings.Contains(ae.Err.Error(), "SCRAM verifier") {
		t.Fatalf("got %v", err)
	}
	if _, ok := c.sent[0].(*pgproto3.AuthenticationMD5Password); !ok {
		t.Fatalf("mock exchange sent %T, want an md5 challenge", c.sent[0])
	}
	if r := ae.Response(); r.Message != `password authentication failed for user "u"` || strings.Contains(r.Message, "SCRAM") {
		t.Errorf("response leaks the cause: %+v", r)
	}
}

// TestSASLprep uses the examples of RFC 4013 section 3.
func TestSASLprep(t *testing.T) {
	for in, want := range map[string]string{
		"I\u00ADX":     "IX",
		"user":         "user",
		"USER":         "USER",
		"\u00AA":       "a",
		"\u2168":       "IX",
		"\u0007":       "\u0007",       // prohibited: raw
		"\u0627\u0031": "\u0627\u0031", // bidi violation: raw
		"a\u00A0b":     "a b",
		"\xff\xfe":     "\xff\xfe", // not UTF-8: raw
		"\u0627\u0628": "\u0627\u0628",
	} {
		if got := saslPrep(in); got != want {
			t.Errorf("saslPrep(%q) = %q, want %q", in, got, want)
		}
	}
}
