// Package acceptance runs peer test suites through shardgate: pgx's own
// test suite (../shared/acceptance/pgx-suite.sh) against a proxy in
// session mode and in transaction mode, in front of a real cluster.
package acceptance
