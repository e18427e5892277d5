package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// MD5Hash returns Postgres' stored form of an md5 password:
// "md5" + hex(md5(password + user)).
func MD5Hash(user, password string) string {
	sum := md5.Sum([]byte(password + user))
	return "md5" + hex.EncodeToString(sum[:])
}

// isMD5Hash applies Postgres' own test for an md5 rolpassword, which only
// accepts lowercase hex.
func isMD5Hash(s string) bool {
	if len(s) != 3+2*md5.Size || !strings.HasPrefix(s, "md5") {
		return false
	}
	for _, r := range s[3:] {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// md5Response is what a client that knows the password answers to salt:
// the stored hash (without its prefix) is itself the shared secret.
func md5Response(hash string, salt [4]byte) string {
	sum := md5.Sum(append([]byte(hash[3:]), salt[:]...))
	return "md5" + hex.EncodeToString(sum[:])
}

// md5Exchange challenges the client with a random salt. A non-nil cause
// dooms the exchange (mock or misconfigured user): the response is still
// checked so the work done does not depend on the outcome.
func md5Exchange(c Conn, user, hash string, cause error) error {
	var salt [4]byte
	rand.Read(salt[:])
	if err := send(c, &pgproto3.AuthenticationMD5Password{Salt: salt}); err != nil {
		return err
	}
	got, err := receivePassword(c)
	if err != nil {
		return err
	}
	want := md5Response(hash, salt)
	ok := subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	if cause != nil {
		return authFailed(user, cause)
	}
	if !ok {
		return authFailed(user, errPasswordMismatch)
	}
	return nil
}
