package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	scramMechanism     = "SCRAM-SHA-256"
	scramMechanismPlus = "SCRAM-SHA-256-PLUS"
	serverNonceLen     = 18
)

// clientFirst is the parsed client-first-message (RFC 5802 section 7).
type clientFirst struct {
	// gs2Header is everything before the bare message ("n,," or "y,,"); the
	// client must echo it, base64-encoded, in the c= attribute later.
	gs2Header string
	// bare is client-first-message-bare, verbatim, for the AuthMessage.
	bare  string
	nonce string
}

// clientFinal is the parsed client-final-message.
type clientFinal struct {
	channelBinding string // the c= value, still base64
	nonce          string
	proof          []byte
	// withoutProof is client-final-message-without-proof, verbatim, for the
	// AuthMessage.
	withoutProof string
}

func malformed(detail string) *Error {
	return protocolViolation("malformed SCRAM message: " + detail)
}

// checkSCRAMText rejects what Postgres rejects before parsing: SCRAM
// messages are text, so an embedded NUL would truncate them there.
func checkSCRAMText(data []byte) error {
	if len(data) == 0 {
		return malformed("empty message")
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return malformed("message contains a NUL byte")
	}
	return nil
}

// parseClientFirst parses a client-first-message. The user name in it is
// ignored, as Postgres ignores it: the startup message's user is the one
// being authenticated and libpq sends an empty name here.
func parseClientFirst(data []byte) (*clientFirst, error) {
	if err := checkSCRAMText(data); err != nil {
		return nil, err
	}
	s := string(data)
	switch s[0] {
	case 'n', 'y':
		// 'y' means the client could bind but thinks we cannot, which is
		// true: we never offer SCRAM-SHA-256-PLUS.
		if len(s) < 2 || s[1] != ',' {
			return nil, malformed("comma expected after the channel-binding flag")
		}
	case 'p':
		return nil, malformed("the client requested channel binding (p=), but only SCRAM-SHA-256 without channel binding is offered")
	default:
		return nil, malformed("unexpected channel-binding flag")
	}
	rest := s[2:]
	if strings.HasPrefix(rest, "a=") {
		return nil, notSupported("client uses authorization identity, but it is not supported")
	}
	if !strings.HasPrefix(rest, ",") {
		return nil, malformed("unexpected attribute in the GS2 header")
	}
	cf := &clientFirst{gs2Header: s[:3], bare: rest[1:]}

	attrs := cf.bare
	if strings.HasPrefix(attrs, "m=") {
		return nil, notSupported("client requires an unsupported SCRAM extension")
	}
	var ok bool
	if _, attrs, ok = readAttr(attrs, 'n'); !ok {
		return nil, malformed(`expected attribute "n"`)
	}
	if cf.nonce, attrs, ok = readAttr(attrs, 'r'); !ok {
		return nil, malformed(`expected attribute "r"`)
	}
	if cf.nonce == "" || !isPrintable(cf.nonce) {
		return nil, malformed("client nonce is empty or not printable")
	}
	// Optional extensions follow; like Postgres, accept and ignore them.
	for attrs != "" {
		if _, _, attrs, ok = readAnyAttr(attrs); !ok {
			return nil, malformed("invalid extension attribute in client-first-message")
		}
	}
	return cf, nil
}

// parseClientFinal parses a client-final-message. Checking the channel
// binding and nonce needs the exchange's state, so the caller does that.
func parseClientFinal(data []byte) (*clientFinal, error) {
	if err := checkSCRAMText(data); err != nil {
		return nil, err
	}
	s := string(data)
	cf := &clientFinal{}
	var rest string
	var ok bool
	if cf.channelBinding, rest, ok = readAttr(s, 'c'); !ok {
		return nil, malformed(`expected attribute "c"`)
	}
	if cf.nonce, rest, ok = readAttr(rest, 'r'); !ok {
		return nil, malformed(`expected attribute "r"`)
	}
	// Extensions may sit between the nonce and the proof; the proof is
	// always last.
	for {
		if rest == "" {
			return nil, malformed(`expected attribute "p"`)
		}
		cf.withoutProof = s[:len(s)-len(rest)-1]
		var name byte
		var value string
		if name, value, rest, ok = readAnyAttr(rest); !ok {
			return nil, malformed("invalid attribute in client-final-message")
		}
		if name != 'p' {
			continue
		}
		proof, err := base64.StdEncoding.DecodeString(value)
		if err != nil || len(proof) != scramKeyLen {
			return nil, malformed("malformed proof in client-final-message")
		}
		if rest != "" {
			return nil, malformed("garbage found at the end of client-final-message")
		}
		cf.proof = proof
		return cf, nil
	}
}

// readAttr reads "name=value" from the start of s, where value runs to the
// next comma, and returns the value and what follows that comma. A comma
// ending s is an error: it promises an attribute that never comes.
func readAttr(s string, name byte) (value, rest string, ok bool) {
	if len(s) < 2 || s[0] != name || s[1] != '=' {
		return "", "", false
	}
	return splitValue(s[2:])
}

// readAnyAttr reads the next attribute whatever its name, which must be a
// single ASCII letter as in RFC 5802's attr-val.
func readAnyAttr(s string) (name byte, value, rest string, ok bool) {
	if len(s) < 2 || !isASCIILetter(s[0]) || s[1] != '=' {
		return 0, "", "", false
	}
	value, rest, ok = splitValue(s[2:])
	return s[0], value, rest, ok
}

func splitValue(s string) (value, rest string, ok bool) {
	value, rest, found := strings.Cut(s, ",")
	if found && rest == "" {
		return "", "", false
	}
	return value, rest, true
}

func isASCIILetter(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// isPrintable is RFC 5802's "printable": visible ASCII except the comma.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

func newServerNonce() string {
	b := make([]byte, serverNonceLen)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// scramExchange runs SCRAM-SHA-256 against v. A non-nil cause dooms the
// exchange (mock or misconfigured user), but the proof is still verified
// so that a doomed exchange costs the same as a real one.
func scramExchange(c Conn, user string, v *Verifier, cause error, serverNonce string) error {
	if err := send(c, &pgproto3.AuthenticationSASL{AuthMechanisms: []string{scramMechanism}}); err != nil {
		return err
	}
	first, err := receiveSASLInitial(c)
	if err != nil {
		return err
	}
	cf, err := parseClientFirst(first)
	if err != nil {
		return err
	}

	nonce := cf.nonce + serverNonce
	serverFirst := "r=" + nonce +
		",s=" + base64.StdEncoding.EncodeToString(v.Salt) +
		",i=" + strconv.Itoa(v.Iterations)
	if err := send(c, &pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)}); err != nil {
		return err
	}
	body, err := receive(c)
	if err != nil {
		return err
	}
	var resp pgproto3.SASLResponse
	if err := resp.Decode(body); err != nil {
		return protocolViolation("malformed SASLResponse message")
	}
	fin, err := parseClientFinal(resp.Data)
	if err != nil {
		return err
	}
	if fin.channelBinding != base64.StdEncoding.EncodeToString([]byte(cf.gs2Header)) {
		return protocolViolation("unexpected SCRAM channel-binding attribute in client-final-message")
	}
	if fin.nonce != nonce {
		return protocolViolation("invalid SCRAM response (nonce mismatch)")
	}

	authMessage := cf.bare + "," + serverFirst + "," + fin.withoutProof
	ok := verifyProof(v, authMessage, fin.proof)
	if cause != nil {
		return authFailed(user, cause)
	}
	if !ok {
		return authFailed(user, errPasswordMismatch)
	}
	serverSig := hmacSHA256(v.ServerKey, authMessage)
	return send(c, &pgproto3.AuthenticationSASLFinal{Data: []byte("v=" + base64.StdEncoding.EncodeToString(serverSig))})
}

// receiveSASLInitial reads the SASLInitialResponse and returns the
// client-first-message, which a client may also defer to a separate
// SASLResponse by sending no initial data (length -1).
func receiveSASLInitial(c Conn) ([]byte, error) {
	body, err := receive(c)
	if err != nil {
		return nil, err
	}
	var init pgproto3.SASLInitialResponse
	if err := init.Decode(body); err != nil {
		return nil, protocolViolation("malformed SASLInitialResponse message")
	}
	// Decode skips the length field; Postgres checks it, and so do we.
	n := int32(binary.BigEndian.Uint32(body[len(init.AuthMechanism)+1:]))
	if init.AuthMechanism != scramMechanism {
		if init.AuthMechanism == scramMechanismPlus {
			return nil, protocolViolation("client selected SCRAM-SHA-256-PLUS, which is not offered")
		}
		return nil, protocolViolation("client selected an invalid SASL authentication mechanism")
	}
	switch {
	case n == -1 && len(init.Data) == 0:
		if err := send(c, &pgproto3.AuthenticationSASLContinue{}); err != nil {
			return nil, err
		}
		body, err := receive(c)
		if err != nil {
			return nil, err
		}
		var resp pgproto3.SASLResponse
		if err := resp.Decode(body); err != nil {
			return nil, protocolViolation("malformed SASLResponse message")
		}
		return resp.Data, nil
	case n < 0 || int(n) != len(init.Data):
		return nil, protocolViolation("malformed SASLInitialResponse message (length mismatch)")
	}
	return init.Data, nil
}

// verifyProof recovers ClientKey from the proof and checks that it hashes
// to StoredKey (RFC 5802 section 3).
func verifyProof(v *Verifier, authMessage string, proof []byte) bool {
	if len(proof) != scramKeyLen {
		return false
	}
	clientKey := hmacSHA256(v.StoredKey, authMessage)
	subtle.XORBytes(clientKey, clientKey, proof)
	got := sha256.Sum256(clientKey)
	return hmac.Equal(got[:], v.StoredKey)
}
