package auth

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// saslPrep normalizes a password with SASLprep (RFC 4013) the way Postgres'
// pg_saslprep does before hashing it for SCRAM. Where SASLprep would reject
// the string (invalid UTF-8, prohibited or unassigned characters, bad
// bidirectional text) Postgres hashes the raw bytes instead, and so do we:
// otherwise verifiers made here would not match the proofs libpq computes.
//
// Go's Unicode tables are newer than the Unicode 3.2 that SASLprep pins, so
// a password using characters assigned after 3.2 is normalized here but
// hashed raw by Postgres; such passwords are vanishingly rare.
func saslPrep(password string) string {
	ascii := true
	for i := 0; i < len(password); i++ {
		if password[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	// Pure ASCII maps to itself, or is rejected for control characters, in
	// which case the raw bytes are used: the same string either way.
	if ascii || !utf8.ValidString(password) {
		return password
	}

	var b strings.Builder
	for _, r := range password {
		switch {
		case isNonASCIISpace(r):
			b.WriteByte(' ')
		case isMappedToNothing(r):
		default:
			b.WriteRune(r)
		}
	}
	out := norm.NFKC.String(b.String())
	if out == "" {
		return password
	}

	hasRandAL, hasL := false, false
	for _, r := range out {
		if isProhibited(r) || !isAssigned(r) {
			return password
		}
		switch bidiClass(r) {
		case bidi.R, bidi.AL:
			hasRandAL = true
		case bidi.L:
			hasL = true
		}
	}
	if hasRandAL {
		first, _ := utf8.DecodeRuneInString(out)
		last, _ := utf8.DecodeLastRuneInString(out)
		if hasL || !isRandAL(first) || !isRandAL(last) {
			return password
		}
	}
	return out
}

func bidiClass(r rune) bidi.Class {
	p, _ := bidi.LookupRune(r)
	return p.Class()
}

func isRandAL(r rune) bool {
	c := bidiClass(r)
	return c == bidi.R || c == bidi.AL
}

// isNonASCIISpace is RFC 3454 table C.1.2.
func isNonASCIISpace(r rune) bool {
	switch {
	case r == 0x00A0, r == 0x1680, r >= 0x2000 && r <= 0x200B,
		r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// isMappedToNothing is RFC 3454 table B.1.
func isMappedToNothing(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x034F, r == 0x1806, r >= 0x180B && r <= 0x180D,
		r >= 0x200B && r <= 0x200D, r == 0x2060, r >= 0xFE00 && r <= 0xFE0F,
		r == 0xFEFF:
		return true
	}
	return false
}

// isProhibited covers the RFC 3454 tables SASLprep prohibits: C.1.2, C.2.1,
// C.2.2, C.3 to C.9 (surrogates, C.5, cannot occur in valid UTF-8).
func isProhibited(r rune) bool {
	switch {
	case isNonASCIISpace(r),
		r < 0x20 || r == 0x7F,  // C.2.1
		r >= 0x80 && r <= 0x9F, // C.2.2
		r == 0x06DD, r == 0x070F, r == 0x180E, r == 0x200C, r == 0x200D,
		r == 0x2028, r == 0x2029, r >= 0x2060 && r <= 0x2063,
		r == 0xFEFF, r >= 0x1D173 && r <= 0x1D17A,
		r >= 0xE000 && r <= 0xF8FF, r >= 0xF0000 && r <= 0xFFFFD, // C.3
		r >= 0x100000 && r <= 0x10FFFD,
		r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE, // C.4
		r >= 0xFFF9 && r <= 0xFFFD,                         // C.6 and part of C.2.2
		r >= 0x2FF0 && r <= 0x2FFB,                         // C.7
		r == 0x0340, r == 0x0341, r == 0x200E, r == 0x200F, // C.8
		r >= 0x202A && r <= 0x202E, r >= 0x206A && r <= 0x206F,
		r == 0xE0001, r >= 0xE0020 && r <= 0xE007F: // C.9
		return true
	}
	return false
}

// isAssigned approximates the complement of RFC 3454 table A.1 with Go's
// current Unicode tables.
func isAssigned(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P,
		unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co)
}
