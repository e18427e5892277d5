// Package cluster starts real PostgreSQL clusters for shardgate's
// integration tests and the devcluster command: a set of shards, each one
// primary with optional streaming replicas, on loopback ports, with helpers
// to crash, restart, pause and promote individual hosts.
//
// The harness drives the server binaries (initdb, pg_ctl, pg_basebackup)
// installed on the machine; tests use ForTest, which skips when none are
// found unless SHARDGATE_REQUIRE_PG=1.
package cluster
