// Package merge combines one statement's results from several shards into
// exactly the rows, bytes and RowDescription a single PostgreSQL server
// would have returned: concatenation, k-way merge for ORDER BY,
// LIMIT/OFFSET, DISTINCT, and re-aggregation of count, sum, min, max,
// avg (sent to shards as sum and count), bool_and and bool_or with GROUP
// BY and HAVING.
//
// The engine is pure: no network, no goroutines. The proxy rewrites the
// statement for the shards, describes the merge with a Spec, sends the
// shard fields through Fields for the client's RowDescription, and feeds
// each shard's DataRows to Run through a Source.
//
// Values are compared as PostgreSQL compares them, in text and binary
// format, for the integer types, float4/float8, numeric, bool, "char",
// oid, text/varchar/bpchar/name, bytea, uuid, date, time, timestamp,
// timestamptz and interval. Strings compare bytewise: shardgate's
// clusters use the "C" collation, under which the server orders them the
// same way, and a shard sorting otherwise is detected and refused. Text
// dates and times must be in the ISO DateStyle and intervals in the
// postgres IntervalStyle (the defaults); float text is PostgreSQL 12+'s
// shortest-exact output (extra_float_digits >= 1, the default). Types
// outside this list can be grouped and deduplicated (equal wire bytes),
// but not sorted, min'd or max'd: Run refuses with SQLSTATE 0A000.
//
// Float sums and averages add the shards' partial sums, so like the
// server's own, whose order of rows is unspecified, they can differ in
// the last bits from a single server's; integer and numeric results are
// exact and print with the server's scales (avg follows numeric_div's
// select_div_scale).
package merge
