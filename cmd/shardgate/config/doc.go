// Package config loads, overrides and validates shardgate's configuration.
//
// Settings come from four sources; each one overrides the ones before it:
//
//  1. built-in defaults (see [Default]);
//  2. the YAML file given to [Load] (see shardgate.example.yaml at the root
//     of the repository for every key);
//  3. environment variables named SHARDGATE_ followed by the key path in
//     upper case with dots replaced by underscores, for example
//     SHARDGATE_POOL_MODE=session or SHARDGATE_POOL_CHECKOUT_TIMEOUT=2s;
//  4. command-line flags defined by [RegisterFlags] and named after the key
//     path, such as --pool.mode or --listen.addr; only flags the user
//     actually set take part. Secrets (monitor.password) have no flag,
//     since any local user can read a process's arguments.
//
// The users and shards lists, routing.write_functions, admin.users and
// admin.stats_users can only be set in the file: a list does not fit in a
// flag or an environment variable without an ad-hoc encoding that would be
// harder to get right than the YAML.
//
// [Load] reports every problem it finds at once, each naming the exact key
// path (such as shards[1].hosts[0].addr) and what was expected, so that a
// configuration can be fixed in one edit. Error messages never quote
// secrets, and [Config.Redacted] gives a copy that is safe to print or log.
//
// For a reload, [Changed] names the keys that differ between two
// configurations and [NeedsRestart] those of them a running shardgate
// cannot apply.
package config
