// Package integration tests shardgate end to end: a proxy server started
// in-process in front of real PostgreSQL servers started by the cluster
// harness, driven by real clients (pgx, raw protocol bytes, psql where it
// matters).
package integration
