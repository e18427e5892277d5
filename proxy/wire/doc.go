// Package wire reads and writes PostgreSQL protocol frames (a type byte, a
// 4-byte length, a body) without decoding them.
//
// The proxy relays most messages untouched, so it works on raw frames and
// decodes only the few it must understand, with the message types of
// github.com/jackc/pgx/v5/pgproto3. Bodies are borrowed from the reader's
// buffer where they fit, which keeps the per-message path free of
// allocations.
package wire
