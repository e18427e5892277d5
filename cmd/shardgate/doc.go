// Command shardgate is a sharding proxy for PostgreSQL: applications
// connect to it as to PostgreSQL, and it pools and routes their statements
// to the servers of the configured shards.
//
//	shardgate [serve] --config FILE   run the proxy (the default command)
//	shardgate check-config FILE       validate a config file and print it, secrets hidden
//	shardgate gen-cert CERT KEY       write a self-signed TLS certificate for development
//	shardgate version                 print the version
package main
