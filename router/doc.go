// Package router turns SQL text into what the proxy needs to know to run
// it: which shard and role serve it (a Plan) and what the statements do to
// the client's session (SET, BEGIN, LISTEN, ...).
//
// The package is pure: no network, no goroutines, no globals beyond a
// read-only keyword table. Text is first split by a small lexer that knows
// PostgreSQL's quoting and comments; only statements whose first keyword
// can change session state are handed to the real PostgreSQL parser
// (pg_query_go), so the common SELECT/INSERT path costs one linear scan.
package router
