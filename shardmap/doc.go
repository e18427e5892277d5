// Package shardmap says which shard owns which rows.
//
// A Map is built from a Spec (the config file's sharding section, or the
// catalog database's copy of it) and checked on the way: overlapping or
// missing hash ranges, overlapping key ranges, unknown shards and tables
// named twice are refused with the path of the offending entry.
//
// Tables are grouped in distributions: tables of one distribution are
// sharded on the same kind of key and co-located, so they join on one
// shard. A distribution places a key by one of three methods:
//
//   - hash: the key is hashed with PostgreSQL's own extended hash functions
//     (HashInt, HashText, HashUUID compute the same 64-bit values in Go),
//     and contiguous ranges of the signed int64 hash space belong to
//     shards. Any server can then select a range's rows with
//     hashint8extended(key, 0) >= lo AND ... < hi.
//   - range: [lo, hi) ranges over the key's own values.
//   - directory: an explicit (distribution, key) -> shard table; new keys
//     are placed by a rule and recorded (see Directory).
//
// Reference tables have a copy on every shard; every other table lives on
// the default shard.
//
// The package does no I/O except through a Directory.
package shardmap
