package shardmap

import (
	"encoding/binary"
	"math/bits"
)

// The functions below reproduce PostgreSQL's 64-bit "extended" hash support
// functions (hashint8extended and friends in src/common/hashfn.c and
// src/backend/access/hash/hashfunc.c), so that the proxy computes the very
// hash the server does; the server's hash partitioning builds on the same
// functions with a seed. They are Bob Jenkins' lookup3 as PostgreSQL adapted
// it: the 64-bit seed is folded into the initial state and the result packs
// the final b and c words.
//
// The server reads key bytes as native words, so its hashes differ between
// little- and big-endian machines. Our servers run on x86_64 and arm64, both
// little-endian, so that is the behaviour we pin here, whatever the host
// running the proxy.

// lookup3Init is the initial state of every lookup3 word before the length
// is added: the golden ratio plus the constant PostgreSQL chose.
const lookup3Init = 0x9e3779b9 + 3923095

// HashInt returns PostgreSQL's hashint8extended(v, 0). For values that fit
// the narrower type it also equals hashint4extended and hashint2extended,
// since the server folds an int8 into 32 bits in a way that leaves such
// values unchanged; that is what lets int2, int4 and int8 columns compare
// equal across types inside one hash opfamily.
func HashInt(v int64) int64 {
	return hashInt(v, 0)
}

// HashText returns PostgreSQL's hashtextextended(s, 0) under a
// deterministic collation, where the hash covers the string's UTF-8 bytes.
// Nondeterministic (ICU) collations hash a sort key instead and are not
// supported.
func HashText(s string) int64 {
	// The conversion does not allocate: the compiler sees the bytes are
	// neither kept nor modified and aliases the string.
	return int64(hashAnyExtended([]byte(s), 0))
}

// HashUUID returns PostgreSQL's uuid_hash_extended(u, 0); u holds the UUID's
// 16 bytes in the order they are written.
func HashUUID(u [16]byte) int64 {
	return int64(hashAnyExtended(u[:], 0))
}

// hashInt is hashint8extended with an explicit seed.
func hashInt(v int64, seed uint64) int64 {
	lo := uint32(v)
	hi := uint32(v >> 32)
	// XOR with the sign-extended high half, so that values in int32 range
	// reduce to themselves.
	if v >= 0 {
		lo ^= hi
	} else {
		lo ^= ^hi
	}
	return int64(hashUint32Extended(lo, seed))
}

// lookup3Mix is lookup3's mix(): it scrambles the state reversibly after each
// 12-byte block so that every input bit affects all three words.
func lookup3Mix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

// lookup3Final is lookup3's final(): a cheaper, irreversible avalanche of the last
// block into b and c, the two words the result is built from.
func lookup3Final(a, b, c uint32) (uint32, uint32) {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return b, c
}

// lookup3Seed returns the initial lookup3 state for a key of n bytes. A
// non-zero seed is treated as an extra 12-byte block (seed high half, low
// half, zero) mixed in before the key; a zero seed leaves the state alone so
// that seed 0 matches the older 32-bit hash functions.
func lookup3Seed(n uint32, seed uint64) (uint32, uint32, uint32) {
	a := uint32(lookup3Init) + n
	b, c := a, a
	if seed != 0 {
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = lookup3Mix(a, b, c)
	}
	return a, b, c
}

// hashAnyExtended is PostgreSQL's hash_any_extended (hash_bytes_extended).
// The server has separate aligned and unaligned paths; on a little-endian
// machine both read the same little-endian words, so one path suffices.
func hashAnyExtended(k []byte, seed uint64) uint64 {
	// The server keeps the length in a uint32; keys are at most 1 GB.
	a, b, c := lookup3Seed(uint32(len(k)), seed)
	for len(k) >= 12 {
		a += binary.LittleEndian.Uint32(k[0:4])
		b += binary.LittleEndian.Uint32(k[4:8])
		c += binary.LittleEndian.Uint32(k[8:12])
		a, b, c = lookup3Mix(a, b, c)
		k = k[12:]
	}
	// The tail goes into the words as if zero-padded, except that the
	// lowest byte of c stays free: lookup3 reserved it for the length,
	// though PostgreSQL never puts the length there.
	switch len(k) {
	case 11:
		c += uint32(k[10]) << 24
		fallthrough
	case 10:
		c += uint32(k[9]) << 16
		fallthrough
	case 9:
		c += uint32(k[8]) << 8
		fallthrough
	case 8:
		b += binary.LittleEndian.Uint32(k[4:8])
		a += binary.LittleEndian.Uint32(k[0:4])
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += binary.LittleEndian.Uint32(k[0:4])
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
	}
	b, c = lookup3Final(a, b, c)
	return uint64(b)<<32 | uint64(c)
}

// hashUint32Extended is PostgreSQL's hash_uint32_extended
// (hash_bytes_uint32_extended): lookup3 of one 4-byte word, with no
// byte-order question since the word is hashed as a number.
func hashUint32Extended(k uint32, seed uint64) uint64 {
	a, b, c := lookup3Seed(4, seed)
	a += k
	b, c = lookup3Final(a, b, c)
	return uint64(b)<<32 | uint64(c)
}
