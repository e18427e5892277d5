package config

import (
	"reflect"
	"slices"
)

// A reload (the admin console's RELOAD) loads the configuration again
// and compares it with the running one. Every key is
// in exactly one of the two lists below; a test fails when a new key is
// in neither.

// restartKeys are the keys a running shardgate cannot change: the sockets
// it has bound, the TLS set up at start, the catalog it follows (and how),
// the identity of its two-phase commits and the format of its log. They
// take effect at the next restart.
var restartKeys = []string{
	"listen.addr",
	"listen.reuse_port",
	"listen.tls.mode",
	"listen.tls.cert_file",
	"listen.tls.key_file",
	"backend.tls",
	"backend.ca_file",
	"sharding.two_phase_commit",
	"sharding.node_name",
	"catalog.dsn",
	"catalog.poll_interval",
	"catalog.directory_cache",
	"metrics.listen",
	"log.format",
}

// liveKeys are the keys a reload applies. pool.mode applies to clients
// that connect after the reload. shards is live for the hosts of each
// shard (addresses, roles, zones), but not for the shards' number, names
// and order, which place the data: [NeedsRestart] checks those itself.
// The sharding section is the live map only without catalog.dsn; with a
// catalog, the catalog's map is used and the section only seeds an empty
// catalog.
var liveKeys = []string{
	"pool.mode",
	"pool.size",
	"pool.min_idle",
	"pool.checkout_timeout",
	"pool.idle_timeout",
	"pool.max_lifetime",
	"pool.prepared_cache_size",
	"pool.max_client_conn",
	"backend.connect_timeout",
	"users",
	"shards",
	"sharding.default_shard",
	"sharding.distributions",
	"sharding.reference_tables",
	"routing.replica_reads",
	"routing.replica_choice",
	"routing.zone",
	"routing.read_your_writes",
	"routing.ryw_wait",
	"routing.ryw_window",
	"routing.parse_cache_size",
	"routing.write_functions",
	"monitor.interval",
	"monitor.timeout",
	"monitor.ban_min",
	"monitor.ban_max",
	"monitor.max_replica_lag",
	"monitor.max_replica_lag_bytes",
	"monitor.user",
	"monitor.password",
	"monitor.database",
	"admin.users",
	"admin.stats_users",
	"admin.database",
	"shutdown.drain_timeout",
	"log.level",
	"log.slow_query",
	"log.parameters",
	"runtime.max_procs",
}

// Changed lists, sorted, the keys whose values differ between old and
// next, such as "pool.size" or "listen.tls.mode". A list (users, shards,
// routing.write_functions, ...) is one key, compared whole; an empty list
// equals a missing one. Only key names are returned, never values, so
// the result is safe to log even when a secret changed.
func Changed(old, next *Config) []string {
	var keys []string
	diffKeys("", reflect.ValueOf(old).Elem(), reflect.ValueOf(next).Elem(), func(key string) {
		keys = append(keys, key)
	})
	slices.Sort(keys)
	return keys
}

// NeedsRestart lists, sorted, the keys that differ between old and next
// but that a running shardgate cannot change (see restartKeys), and
// "shards" when the shards' number, names or order differ. A reload
// applies the rest and should report these, which keep their old values
// until the next restart.
func NeedsRestart(old, next *Config) []string {
	var keys []string
	for _, k := range Changed(old, next) {
		if slices.Contains(restartKeys, k) {
			keys = append(keys, k)
		}
	}
	if !slices.Equal(old.ShardNames(), next.ShardNames()) {
		keys = append(keys, "shards")
	}
	slices.Sort(keys)
	return keys
}

// diffKeys calls changed with the key of each field that differs between
// a and b, structs of the same type, descending into sections.
func diffKeys(prefix string, a, b reflect.Value, changed func(key string)) {
	for i := range a.NumField() {
		key := prefix + a.Type().Field(i).Tag.Get("mapstructure")
		fa, fb := a.Field(i), b.Field(i)
		switch {
		case fa.Kind() == reflect.Struct:
			diffKeys(key+".", fa, fb, changed)
		case fa.Kind() == reflect.Slice && fa.Len() == 0 && fb.Len() == 0:
		case !reflect.DeepEqual(fa.Interface(), fb.Interface()):
			changed(key)
		}
	}
}
