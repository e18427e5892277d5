package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Conn is the client side of an authentication exchange, as the proxy's session offers it.
type Conn interface {
	// Send writes one message to the client and flushes it.
	Send(msg pgproto3.BackendMessage) error
	// Receive reads the client's next message, which must be a password-type ('p') message, and returns its body (without type byte and length).
	// It returns an error if the client sent anything else or went away.
	//
	// An implementation that wants to pick the SQLSTATE for a bad message
	// (say 08P01 for an unexpected message type) returns an *Error; any other
	// error is reported as CodeConnectionFailure. Postgres caps these
	// messages at 65535 bytes, and implementations should too.
	Receive() ([]byte, error)
}

// Method is an authentication method, named as in pg_hba.conf.
type Method string

// The supported methods.
const (
	MethodSCRAM    Method = "scram-sha-256"
	MethodMD5      Method = "md5"
	MethodPassword Method = "password"
	MethodTrust    Method = "trust"
)

// DefaultMethod is the method used when a credential names none; it matches
// Postgres' default password_encryption.
const DefaultMethod = MethodSCRAM

// ParseMethod converts a configuration string to a Method. The empty string
// means DefaultMethod; case is ignored.
func ParseMethod(s string) (Method, error) {
	if s == "" {
		return DefaultMethod, nil
	}
	switch m := Method(strings.ToLower(s)); m {
	case MethodSCRAM, MethodMD5, MethodPassword, MethodTrust:
		return m, nil
	}
	return "", fmt.Errorf("unknown authentication method %q (want scram-sha-256, md5, password or trust)", s)
}

// Credential is what the proxy knows about one user's password.
//
// A Credential that will be shared between sessions should be prepared once
// with Prepare, after which it is read-only and safe for concurrent use.
// Authenticate also accepts an unprepared Credential but then pays for the
// preparation, including a full PBKDF2 run for SCRAM from a plaintext
// password, on every login.
type Credential struct {
	// User is the role name, as the client sends it in the startup message.
	// The md5 method hashes it together with the password.
	User string
	// Method is how the client must authenticate; empty means DefaultMethod.
	Method Method
	// Password is the plaintext password; it may be empty when Verifier or
	// MD5Hash is given.
	Password string
	// Verifier is a SCRAM secret in Postgres' rolpassword format:
	// "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
	Verifier string
	// MD5Hash is an md5 secret in Postgres' rolpassword format:
	// "md5" + hex(md5(password + user)).
	MD5Hash string

	verifier *Verifier
	prepared bool
}

// Prepare validates the credential against its method and derives what the
// exchange needs: for scram-sha-256 from a plaintext password it generates a
// Verifier with a random salt once, so that logins skip PBKDF2; for md5 it
// computes MD5Hash. Fields it fills in are visible afterwards, so a
// generated Verifier can be persisted.
//
// Prepare fails when the method cannot work with the secrets given: SCRAM
// cannot be run from an md5 hash, nor md5 from a SCRAM verifier. Changing
// fields after Prepare requires calling it again.
func (c *Credential) Prepare() error {
	c.prepared = false
	m, err := ParseMethod(string(c.Method))
	if err != nil {
		return err
	}
	c.Method = m
	if c.User == "" {
		return errors.New("credential has no user name")
	}
	var v *Verifier
	if c.Verifier != "" {
		if v, err = ParseVerifier(c.Verifier); err != nil {
			return fmt.Errorf("user %q: %w", c.User, err)
		}
	}
	if c.MD5Hash != "" && !isMD5Hash(c.MD5Hash) {
		return fmt.Errorf("user %q: md5 hash must be \"md5\" followed by 32 lowercase hex digits", c.User)
	}

	switch m {
	case MethodSCRAM:
		if v != nil {
			break
		}
		if c.Password == "" {
			if c.MD5Hash != "" {
				return fmt.Errorf("user %q: scram-sha-256 needs a password or SCRAM verifier, not only an md5 hash", c.User)
			}
			return fmt.Errorf("user %q has no password", c.User)
		}
		if v, err = newVerifier(c.Password, DefaultIterations); err != nil {
			return fmt.Errorf("user %q: %w", c.User, err)
		}
		c.Verifier = v.String()
	case MethodMD5:
		if c.MD5Hash != "" {
			break
		}
		if c.Password == "" {
			if v != nil {
				return fmt.Errorf("user %q: md5 needs a password or md5 hash, not only a SCRAM verifier", c.User)
			}
			return fmt.Errorf("user %q has no password", c.User)
		}
		c.MD5Hash = MD5Hash(c.User, c.Password)
	case MethodPassword:
		if c.Password == "" && v == nil && c.MD5Hash == "" {
			return fmt.Errorf("user %q has no password", c.User)
		}
	}
	c.verifier = v
	c.prepared = true
	return nil
}

// Authenticate runs the exchange for cred's method with the client and
// returns nil if the client proved it knows the password. It does not send
// AuthenticationOk; the caller does, followed by the rest of the startup
// sequence.
//
// On failure it returns an *Error: CodeInvalidPassword with Postgres' usual
// message for a wrong password, CodeProtocolViolation or
// CodeFeatureNotSupported for a misbehaving client, or CodeConnectionFailure
// when the Conn failed. The caller should send the error's Response to the
// client (except for connection failures) and close the connection.
//
// A credential that fails Prepare does not short-circuit: the client gets a
// mock exchange and the same failure as for a wrong password, with the
// configuration problem in the Error's Err for the log.
func Authenticate(c Conn, cred *Credential) error {
	if !cred.prepared {
		p := *cred
		if err := p.Prepare(); err != nil {
			return mockExchange(c, cred.User, cred.Method, err)
		}
		cred = &p
	}
	switch cred.Method {
	case MethodTrust:
		return nil
	case MethodPassword:
		return cleartextExchange(c, cred)
	case MethodMD5:
		return md5Exchange(c, cred.User, cred.MD5Hash, nil)
	default:
		return scramExchange(c, cred.User, cred.verifier, nil, newServerNonce())
	}
}

// AuthenticateUnknown runs a mock exchange for a user the proxy does not
// know, and always fails with the same *Error a wrong password gives, so a
// client cannot probe which users exist. Like Postgres, the mock SCRAM
// exchange uses a salt derived from the user name and a per-process secret,
// so repeated attempts for one name see a stable salt.
//
// method should be what a known user would be asked for; md5 and password
// get their own mock exchanges, anything else (including trust, which has no
// exchange to imitate) a SCRAM one.
func AuthenticateUnknown(c Conn, user string, method Method) error {
	return mockExchange(c, user, method, errUnknownUser)
}

var (
	errUnknownUser      = errors.New("no such user")
	errPasswordMismatch = errors.New("password does not match")
)

func mockExchange(c Conn, user string, method Method, cause error) error {
	m, err := ParseMethod(string(method))
	if err != nil {
		m = DefaultMethod
	}
	switch m {
	case MethodMD5:
		return md5Exchange(c, user, mockMD5Hash(user), cause)
	case MethodPassword:
		if err := send(c, &pgproto3.AuthenticationCleartextPassword{}); err != nil {
			return err
		}
		if _, err := receivePassword(c); err != nil {
			return err
		}
		return authFailed(user, cause)
	default:
		return scramExchange(c, user, mockVerifier(user), cause, newServerNonce())
	}
}

func cleartextExchange(c Conn, cred *Credential) error {
	if err := send(c, &pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return err
	}
	pw, err := receivePassword(c)
	if err != nil {
		return err
	}
	if !matchesPlain(cred, pw) {
		return authFailed(cred.User, errPasswordMismatch)
	}
	return nil
}

// matchesPlain checks a cleartext password against whichever secret the
// credential holds, as Postgres does for the password method.
func matchesPlain(cred *Credential, pw string) bool {
	if pw == "" {
		return false
	}
	switch {
	case cred.Password != "":
		// Comparing digests keeps the comparison constant-time even when
		// the lengths differ.
		got, want := sha256.Sum256([]byte(pw)), sha256.Sum256([]byte(cred.Password))
		return subtle.ConstantTimeCompare(got[:], want[:]) == 1
	case cred.verifier != nil:
		return cred.verifier.matches(pw)
	case cred.MD5Hash != "":
		return subtle.ConstantTimeCompare([]byte(MD5Hash(cred.User, pw)), []byte(cred.MD5Hash)) == 1
	}
	return false
}

func send(c Conn, msg pgproto3.BackendMessage) error {
	if err := c.Send(msg); err != nil {
		return connError(err)
	}
	return nil
}

func receive(c Conn) ([]byte, error) {
	body, err := c.Receive()
	if err != nil {
		return nil, connError(err)
	}
	return body, nil
}

// receivePassword reads a PasswordMessage, holding it to the same shape
// Postgres does: exactly one NUL, at the end.
func receivePassword(c Conn) (string, error) {
	body, err := receive(c)
	if err != nil {
		return "", err
	}
	var msg pgproto3.PasswordMessage
	if err := msg.Decode(body); err != nil || len(msg.Password)+1 != len(body) {
		return "", protocolViolation("invalid password packet size")
	}
	return msg.Password, nil
}

func connError(err error) error {
	if ae, ok := errors.AsType[*Error](err); ok {
		return ae
	}
	return &Error{Code: CodeConnectionFailure, Message: "connection to client lost during authentication", Err: err}
}
