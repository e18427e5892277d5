// Package differential runs one seeded random workload against two
// PostgreSQL endpoints, the proxy under test and a single unsharded
// server, and compares every answer: rows (as the bytes the server sent,
// in text or binary format), column descriptions, command tags and
// SQLSTATEs.
//
// NewWorkload generates the statements (Schema, Seed and Next); they
// depend only on the seed, never on earlier answers, so a seed replays
// the same workload whatever the proxy refused. Run executes one Step on
// one connection; Compare says how two Results differ, with the
// tolerance the Step's Order allows (rows without a fixed order compare
// as multisets, rows ordered with ties as groups). A Runner drives the
// pair: the proxy first, then, unless the proxy refused the statement
// (SQLSTATE 0A000), the reference, and tallies what happened per label.
//
// The package knows nothing of clusters or shard maps: the caller says
// which shards keys live on (Runner.Span) to label statements that touch
// one shard or several.
package differential
