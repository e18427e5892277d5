package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardgate/shardgate/shardmap"
)

// leafKeys lists the keys Changed compares: the fields of t, descending
// into sections; a list is one key.
func leafKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + f.Tag.Get("mapstructure")
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, leafKeys(key+".", f.Type)...)
		} else {
			keys = append(keys, key)
		}
	}
	return keys
}

// TestEveryKeyClassified fails when a key is added to Config without
// saying whether a reload can change it.
func TestEveryKeyClassified(t *testing.T) {
	keys := leafKeys("", reflect.TypeFor[Config]())
	for _, k := range keys {
		live, restart := slices.Contains(liveKeys, k), slices.Contains(restartKeys, k)
		switch {
		case !live && !restart:
			t.Errorf("%s is in neither liveKeys nor restartKeys", k)
		case live && restart:
			t.Errorf("%s is in both liveKeys and restartKeys", k)
		}
	}
	for _, list := range [][]string{liveKeys, restartKeys} {
		for i, k := range list {
			if !slices.Contains(keys, k) {
				t.Errorf("%s is not a key of Config", k)
			}
			if slices.Contains(list[:i], k) {
				t.Errorf("%s is listed twice", k)
			}
		}
	}
}

// change sets v to a different value of its type.
func change(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	default:
		t.Fatalf("no way to change a %s", v.Type())
	}
}

// fieldAt returns the field of c at a dotted key.
func fieldAt(c *Config, key string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("mapstructure") == part {
				v = v.Field(i)
				break
			}
		}
	}
	return v
}

// TestChangedEveryKey changes each key alone and checks that Changed
// names it, and NeedsRestart too when it is a restart key.
func TestChangedEveryKey(t *testing.T) {
	for _, key := range leafKeys("", reflect.TypeFor[Config]()) {
		t.Run(key, func(t *testing.T) {
			old, next := validConfig(), validConfig()
			change(t, fieldAt(next, key))
			if got := Changed(old, next); !slices.Equal(got, []string{key}) {
				t.Errorf("Changed = %v, want [%s]", got, key)
			}
			var want []string
			// Appending a shard changes their number.
			if slices.Contains(restartKeys, key) || key == "shards" {
				want = []string{key}
			}
			if got := NeedsRestart(old, next); !slices.Equal(got, want) {
				t.Errorf("NeedsRestart = %v, want %v", got, want)
			}
		})
	}
}

func TestChangedAndNeedsRestart(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		changed []string
		restart []string
	}{
		{name: "same", mutate: func(*Config) {}},
		{
			name:   "empty list equals missing list",
			mutate: func(c *Config) { c.Routing.WriteFunctions, c.Admin.Users = []string{}, []string{} },
		},
		{
			name: "live keys only",
			mutate: func(c *Config) {
				c.Pool.Size, c.Log.Level, c.Runtime.MaxProcs = 40, LogDebug, 2
				c.Users[0].Password = "new secret"
			},
			changed: []string{"log.level", "pool.size", "runtime.max_procs", "users"},
		},
		{
			name: "restart keys, sorted",
			mutate: func(c *Config) {
				c.Listen.Addr, c.Listen.TLS.Mode, c.Log.Format = "0.0.0.0:6432", ClientTLSAllow, LogFormatJSON
				c.Metrics.Listen, c.Catalog.DSN = ":9930", "postgres://db/c"
				c.Pool.Mode = PoolSession
			},
			changed: []string{"catalog.dsn", "listen.addr", "listen.tls.mode", "log.format", "metrics.listen", "pool.mode"},
			restart: []string{"catalog.dsn", "listen.addr", "listen.tls.mode", "log.format", "metrics.listen"},
		},
		{
			name: "hosts of a shard change live",
			mutate: func(c *Config) {
				c.Shards[0].Hosts[1].Addr = "127.0.0.1:15434"
				c.Shards[1].Hosts[0].Role, c.Shards[1].Hosts[1].Zone = RolePrimary, "b"
				c.Shards[1].Hosts = append(c.Shards[1].Hosts, Host{Addr: "db:5432", Role: RoleReplica})
			},
			changed: []string{"shards"},
		},
		{
			name:    "renamed shard",
			mutate:  func(c *Config) { c.Shards[1].Name = "s9" },
			changed: []string{"shards"},
			restart: []string{"shards"},
		},
		{
			name:    "reordered shards",
			mutate:  func(c *Config) { c.Shards[0], c.Shards[1] = c.Shards[1], c.Shards[0] },
			changed: []string{"shards"},
			restart: []string{"shards"},
		},
		{
			name:    "removed shard",
			mutate:  func(c *Config) { c.Shards = c.Shards[:1] },
			changed: []string{"shards"},
			restart: []string{"shards"},
		},
		{
			name: "sharding map",
			mutate: func(c *Config) {
				c.Sharding.Distributions = []shardmap.DistributionSpec{{Name: "users", Method: shardmap.MethodHash}}
				c.Sharding.TwoPhaseCommit = true
			},
			changed: []string{"sharding.distributions", "sharding.two_phase_commit"},
			restart: []string{"sharding.two_phase_commit"},
		},
		{
			name: "ops keys are live",
			mutate: func(c *Config) {
				c.Admin.Users, c.Admin.Database = []string{"admin"}, "console"
				c.Shutdown.DrainTimeout, c.Log.SlowQuery, c.Log.Parameters = time.Minute, time.Second, true
			},
			changed: []string{"admin.database", "admin.users", "log.parameters", "log.slow_query", "shutdown.drain_timeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, next := validConfig(), validConfig()
			tt.mutate(next)
			if got := Changed(old, next); !slices.Equal(got, tt.changed) {
				t.Errorf("Changed = %v, want %v", got, tt.changed)
			}
			if got := NeedsRestart(old, next); !slices.Equal(got, tt.restart) {
				t.Errorf("NeedsRestart = %v, want %v", got, tt.restart)
			}
		})
	}
}

// TestReloadOfLoadedFile compares two loads of one file, as a reload
// with no edit does: nothing may be reported.
func TestReloadOfLoadedFile(t *testing.T) {
	clearEnv(t)
	a, err := Load(examplePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(examplePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := Changed(a, b); got != nil {
		t.Errorf("Changed = %v, want none", got)
	}
}
