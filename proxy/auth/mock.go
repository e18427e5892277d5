package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// mockSecret keys the fake secrets of unknown users. It lives only as long
// as the process, like Postgres' mock_auth_nonce, so an observer cannot
// precompute the fake salts, yet a salt stays stable across attempts for
// the same name, as a real user's does.
var mockSecret = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
})

func mockDerive(label, user string) []byte {
	h := hmac.New(sha256.New, mockSecret())
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write([]byte(user))
	return h.Sum(nil)
}

// mockVerifier is a plausible SCRAM secret for a user that has none: same
// salt length and iteration count as the ones NewVerifier makes.
func mockVerifier(user string) *Verifier {
	return &Verifier{
		Iterations: DefaultIterations,
		Salt:       mockDerive("scram salt", user)[:scramSaltLen],
		StoredKey:  mockDerive("scram stored key", user),
		ServerKey:  mockDerive("scram server key", user),
	}
}

func mockMD5Hash(user string) string {
	return "md5" + hex.EncodeToString(mockDerive("md5", user)[:md5.Size])
}
