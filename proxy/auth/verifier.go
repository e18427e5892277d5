package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultIterations is the PBKDF2 iteration count NewVerifier uses when
// given 0, the same as Postgres' scram_iterations default.
const DefaultIterations = 4096

const (
	scramSaltLen = 16
	scramKeyLen  = sha256.Size
	verifierTag  = "SCRAM-SHA-256$"
)

// Verifier is a parsed SCRAM-SHA-256 secret: everything the server needs to
// check a client's proof and sign its reply, without the password.
type Verifier struct {
	// Iterations is the PBKDF2 iteration count.
	Iterations int
	// Salt is the PBKDF2 salt, sent to the client in the clear.
	Salt []byte
	// StoredKey is H(ClientKey); it checks the client's proof.
	StoredKey []byte
	// ServerKey signs the server's final message, proving to the client
	// that the proxy holds the secret too.
	ServerKey []byte
}

// String formats v as Postgres stores it in pg_authid.rolpassword.
func (v *Verifier) String() string {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("%s%d:%s$%s:%s", verifierTag, v.Iterations,
		b64(v.Salt), b64(v.StoredKey), b64(v.ServerKey))
}

// ParseVerifier parses a SCRAM secret in Postgres' rolpassword format,
// "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
func ParseVerifier(s string) (*Verifier, error) {
	rest, ok := strings.CutPrefix(s, verifierTag)
	if !ok {
		return nil, errors.New("SCRAM verifier must start with " + verifierTag)
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, errors.New("SCRAM verifier lacks the '$' before its keys")
	}
	iterStr, saltStr, ok := strings.Cut(params, ":")
	if !ok {
		return nil, errors.New("SCRAM verifier lacks the ':' between iterations and salt")
	}
	storedStr, serverStr, ok := strings.Cut(keys, ":")
	if !ok {
		return nil, errors.New("SCRAM verifier lacks the ':' between StoredKey and ServerKey")
	}
	iter, err := strconv.Atoi(iterStr)
	if err != nil || iter < 1 || iter > math.MaxInt32 {
		return nil, fmt.Errorf("SCRAM verifier has invalid iteration count %q", iterStr)
	}
	v := &Verifier{Iterations: iter}
	if v.Salt, err = base64.StdEncoding.DecodeString(saltStr); err != nil || len(v.Salt) == 0 {
		return nil, errors.New("SCRAM verifier has invalid salt")
	}
	if v.StoredKey, err = base64.StdEncoding.DecodeString(storedStr); err != nil || len(v.StoredKey) != scramKeyLen {
		return nil, errors.New("SCRAM verifier has invalid StoredKey")
	}
	if v.ServerKey, err = base64.StdEncoding.DecodeString(serverStr); err != nil || len(v.ServerKey) != scramKeyLen {
		return nil, errors.New("SCRAM verifier has invalid ServerKey")
	}
	return v, nil
}

// NewVerifier derives a SCRAM-SHA-256 secret from password with a random
// 16-byte salt, formatted for Credential.Verifier or pg_authid.rolpassword.
// iterations 0 means DefaultIterations. Like Postgres, it normalizes the
// password with SASLprep when it can, so clients that do the same (libpq,
// pgx) compute matching proofs.
func NewVerifier(password string, iterations int) (string, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	v, err := newVerifier(password, iterations)
	if err != nil {
		return "", err
	}
	return v.String(), nil
}

func newVerifier(password string, iterations int) (*Verifier, error) {
	if iterations < 1 || iterations > math.MaxInt32 {
		return nil, fmt.Errorf("invalid SCRAM iteration count %d", iterations)
	}
	salt := make([]byte, scramSaltLen)
	rand.Read(salt)
	return deriveVerifier(password, salt, iterations)
}

func deriveVerifier(password string, salt []byte, iterations int) (*Verifier, error) {
	salted, err := pbkdf2.Key(sha256.New, saslPrep(password), salt, iterations, scramKeyLen)
	if err != nil {
		return nil, fmt.Errorf("deriving SCRAM keys: %w", err)
	}
	stored := sha256.Sum256(hmacSHA256(salted, "Client Key"))
	return &Verifier{
		Iterations: iterations,
		Salt:       salt,
		StoredKey:  stored[:],
		ServerKey:  hmacSHA256(salted, "Server Key"),
	}, nil
}

// matches reports whether password produces v, for the cleartext method
// against a stored SCRAM secret. Checking both keys costs nothing extra
// since one PBKDF2 run yields both.
func (v *Verifier) matches(password string) bool {
	got, err := deriveVerifier(password, v.Salt, v.Iterations)
	if err != nil {
		return false
	}
	return hmac.Equal(got.StoredKey, v.StoredKey) && hmac.Equal(got.ServerKey, v.ServerKey)
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
