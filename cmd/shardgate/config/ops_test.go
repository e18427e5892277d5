package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

func TestOpsDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(writeFile(t, minimalYAML), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"admin", cfg.Admin, AdminConfig{Database: "shardgate"}},
		{"metrics", cfg.Metrics, MetricsConfig{}},
		{"shutdown", cfg.Shutdown, ShutdownConfig{DrainTimeout: 30 * time.Second}},
		{"log", cfg.Log, LogConfig{Level: LogInfo, Format: LogFormatAuto}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %+v, want %+v", tt.got, tt.want)
			}
		})
	}
}

func TestOpsFromFileEnvAndFlags(t *testing.T) {
	file := minimalYAML + `
admin:
  users: [app]
  stats_users: [app]
  database: console
metrics:
  listen: 127.0.0.1:9930
shutdown:
  drain_timeout: 10s
log:
  slow_query: 500ms
  parameters: true
`
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*Config) (got, want any)
	}{
		{"file", nil, nil, func(c *Config) (any, any) {
			return []any{c.Admin.Database, c.Metrics.Listen, c.Shutdown.DrainTimeout, c.Log.SlowQuery, c.Log.Parameters},
				[]any{"console", "127.0.0.1:9930", 10 * time.Second, 500 * time.Millisecond, true}
		}},
		{"file lists", nil, nil, func(c *Config) (any, any) {
			return []any{strings.Join(c.Admin.Users, ","), strings.Join(c.Admin.StatsUsers, ",")}, []any{"app", "app"}
		}},
		{"env metrics.listen", map[string]string{"SHARDGATE_METRICS_LISTEN": ":9931"}, nil,
			func(c *Config) (any, any) { return c.Metrics.Listen, ":9931" }},
		{"env admin.database", map[string]string{"SHARDGATE_ADMIN_DATABASE": "pgbouncer"}, nil,
			func(c *Config) (any, any) { return c.Admin.Database, "pgbouncer" }},
		{"env drain_timeout", map[string]string{"SHARDGATE_SHUTDOWN_DRAIN_TIMEOUT": "0"}, nil,
			func(c *Config) (any, any) { return c.Shutdown.DrainTimeout, time.Duration(0) }},
		{"env slow_query", map[string]string{"SHARDGATE_LOG_SLOW_QUERY": "2s"}, nil,
			func(c *Config) (any, any) { return c.Log.SlowQuery, 2 * time.Second }},
		{"env parameters", map[string]string{"SHARDGATE_LOG_PARAMETERS": "false"}, nil,
			func(c *Config) (any, any) { return c.Log.Parameters, false }},
		{"admin lists come from the file only", map[string]string{"SHARDGATE_ADMIN_USERS": "x", "SHARDGATE_ADMIN_STATS_USERS": "y"}, nil,
			func(c *Config) (any, any) { return len(c.Admin.Users) + len(c.Admin.StatsUsers), 2 }},
		{"flag metrics.listen", nil, []string{"--metrics.listen=127.0.0.1:0"},
			func(c *Config) (any, any) { return c.Metrics.Listen, "127.0.0.1:0" }},
		{"flag beats env", map[string]string{"SHARDGATE_LOG_PARAMETERS": "true"}, []string{"--log.parameters=false"},
			func(c *Config) (any, any) { return c.Log.Parameters, false }},
		{"flag duration", nil, []string{"--shutdown.drain_timeout=1m"},
			func(c *Config) (any, any) { return c.Shutdown.DrainTimeout, time.Minute }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("shardgate", pflag.ContinueOnError)
			RegisterFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(writeFile(t, file), fs)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got, want := tt.check(cfg); !slicesEqualAny(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestValidateOps(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{
			name: "admin users known",
			mutate: func(c *Config) {
				c.Admin.Users, c.Admin.StatsUsers = []string{"admin"}, []string{"ro", "admin"}
			},
		},
		{
			name: "unknown admin users",
			mutate: func(c *Config) {
				c.Admin.Users, c.Admin.StatsUsers = []string{"admin", "root"}, []string{"", "ro"}
			},
			want: []string{
				`admin.users[1]: expected the name of one of users, got "root"`,
				`admin.stats_users[0]: expected the name of one of users, got ""`,
			},
		},
		{
			name: "no second message for admin users without users",
			mutate: func(c *Config) {
				c.Users, c.Admin.Users = nil, []string{"admin"}
			},
			want: []string{`users: at least one user is required`},
		},
		{
			name:   "empty admin database",
			mutate: func(c *Config) { c.Admin.Database = "" },
			want:   []string{`admin.database: required (default shardgate)`},
		},
		{
			name:   "metrics on any interface",
			mutate: func(c *Config) { c.Metrics.Listen = ":9930" },
		},
		{
			name:   "metrics on a free port",
			mutate: func(c *Config) { c.Listen.Addr, c.Metrics.Listen = "127.0.0.1:0", "127.0.0.1:0" },
		},
		{
			name:   "metrics without port",
			mutate: func(c *Config) { c.Metrics.Listen = "localhost" },
			want:   []string{`metrics.listen: expected host:port, got "localhost"`},
		},
		{
			name:   "metrics port out of range",
			mutate: func(c *Config) { c.Metrics.Listen = "127.0.0.1:99999" },
			want:   []string{`metrics.listen: expected host:port with a port from 0 to 65535, got "127.0.0.1:99999"`},
		},
		{
			name:   "metrics on the clients' address",
			mutate: func(c *Config) { c.Metrics.Listen = c.Listen.Addr },
			want:   []string{`metrics.listen: expected an address other than listen.addr, got "127.0.0.1:6432"`},
		},
		{
			name:   "zero drain timeout",
			mutate: func(c *Config) { c.Shutdown.DrainTimeout = 0 },
		},
		{
			name:   "negative drain timeout",
			mutate: func(c *Config) { c.Shutdown.DrainTimeout = -time.Second },
			want:   []string{`shutdown.drain_timeout: expected a duration >= 0 such as 30s (0 means no wait), got "-1s"`},
		},
		{
			name:   "negative slow query",
			mutate: func(c *Config) { c.Log.SlowQuery = -time.Millisecond },
			want:   []string{`log.slow_query: expected a duration >= 0 such as 1s (0 means off), got "-1ms"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			got := problems(c.Validate())
			if !slices.Equal(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadErrorsOps(t *testing.T) {
	tests := []struct {
		name string
		body string
		env  map[string]string
		want string
	}{
		{
			name: "admin users not a list",
			body: minimalYAML + "admin:\n  users: app\n",
			want: `admin.users: expected a list, got "app"`,
		},
		{
			name: "admin user not a string",
			body: minimalYAML + "admin:\n  stats_users: [1]\n",
			want: `admin.stats_users[0]: expected a string, got a number (put it in quotes)`,
		},
		{
			name: "unknown admin user",
			body: minimalYAML + "admin:\n  users: [root]\n",
			want: `admin.users[0]: expected the name of one of users, got "root"`,
		},
		{
			name: "bad metrics address from env",
			body: minimalYAML,
			env:  map[string]string{"SHARDGATE_METRICS_LISTEN": "9930"},
			want: `metrics.listen: expected host:port, got "9930" (from SHARDGATE_METRICS_LISTEN)`,
		},
		{
			name: "drain timeout without unit",
			body: minimalYAML + "shutdown:\n  drain_timeout: 30\n",
			want: `shutdown.drain_timeout: expected a duration with a unit such as 5s, 250ms or 10m, got 30`,
		},
		{
			name: "parameters not a boolean",
			body: minimalYAML + "log:\n  parameters: sometimes\n",
			want: `log.parameters: expected true or false, got "sometimes"`,
		},
		{
			name: "typo in a new section",
			body: minimalYAML + "shutdown:\n  drain_timout: 5s\n",
			want: `unknown key "shutdown.drain_timout" (did you mean "shutdown.drain_timeout"?)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := Load(writeFile(t, tt.body), nil)
			if !slices.Contains(problems(err), tt.want) {
				t.Errorf("missing line %q in:\n%v", tt.want, err)
			}
		})
	}
}

func TestRedactedOps(t *testing.T) {
	c := validConfig()
	c.Admin.Users, c.Admin.StatsUsers = []string{"admin"}, []string{"ro"}
	c.Metrics.Listen = "127.0.0.1:9930"
	r := c.Redacted()
	r.Admin.Users[0], r.Admin.StatsUsers[0] = "changed", "changed"
	if c.Admin.Users[0] != "admin" || c.Admin.StatsUsers[0] != "ro" {
		t.Error("Redacted shares the admin lists with the original")
	}
	out, err := yaml.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stats_users:\n        - ro", "listen: 127.0.0.1:9930", "drain_timeout: 30s", "slow_query: 0s", "parameters: false"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
}
