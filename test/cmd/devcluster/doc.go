// Command devcluster serves `make run`: it starts a local PostgreSQL cluster
// (by default two shards, each a primary and one streaming replica, on fixed
// ports from 15432), writes a shardgate configuration pointing at it, and
// runs the shardgate proxy in the foreground until Ctrl-C, when it stops the
// proxy and the cluster.
//
// Usage:
//
//	devcluster [--dir ./.run] [--shards 2] [--replicas 1] [--base-port 15432]
//	           [--proxy-bin ./bin/shardgate] [--listen 127.0.0.1:6432] [--pg-log]
package main
