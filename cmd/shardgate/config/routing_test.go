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

func TestRoutingMonitorDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(writeFile(t, minimalYAML), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantRouting := RoutingConfig{
		ReplicaReads:   ReplicaReadsOn,
		ReplicaChoice:  ChoiceRoundRobin,
		ReadYourWrites: RYWLSN,
		RYWWait:        50 * time.Millisecond,
		RYWWindow:      5 * time.Second,
		ParseCacheSize: 10000,
	}
	wantMonitor := MonitorConfig{
		Interval:           100 * time.Millisecond,
		Timeout:            time.Second,
		BanMin:             250 * time.Millisecond,
		BanMax:             10 * time.Second,
		MaxReplicaLag:      10 * time.Second,
		MaxReplicaLagBytes: 64 << 20,
		Database:           "postgres",
	}
	if !reflect.DeepEqual(cfg.Routing, wantRouting) {
		t.Errorf("routing = %+v, want %+v", cfg.Routing, wantRouting)
	}
	if !reflect.DeepEqual(cfg.Monitor, wantMonitor) {
		t.Errorf("monitor = %+v, want %+v", cfg.Monitor, wantMonitor)
	}
	if user, pw := cfg.MonitorCredentials(); user != "app" || pw != "app" {
		t.Errorf("MonitorCredentials = %q, %q; want the first user's", user, pw)
	}
}

func TestRoutingMonitorFromFile(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(writeFile(t, minimalYAML+`
routing:
  replica_reads: include_primary
  replica_choice: least_connections
  zone: eu-west-1a
  read_your_writes: time
  ryw_wait: 0
  ryw_window: 2s
  parse_cache_size: 100
  write_functions: [add_order, nextval2]
monitor:
  interval: 10ms
  timeout: 500ms
  ban_min: 1s
  ban_max: 1s
  max_replica_lag: 0
  max_replica_lag_bytes: 512kB
  user: monitor
  password: m0n
  database: app
`), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantRouting := RoutingConfig{
		ReplicaReads:   ReplicaReadsIncludePrimary,
		ReplicaChoice:  ChoiceLeastConnections,
		Zone:           "eu-west-1a",
		ReadYourWrites: RYWTime,
		RYWWait:        0,
		RYWWindow:      2 * time.Second,
		ParseCacheSize: 100,
		WriteFunctions: []string{"add_order", "nextval2"},
	}
	wantMonitor := MonitorConfig{
		Interval:           10 * time.Millisecond,
		Timeout:            500 * time.Millisecond,
		BanMin:             time.Second,
		BanMax:             time.Second,
		MaxReplicaLagBytes: 512 << 10,
		User:               "monitor",
		Password:           "m0n",
		Database:           "app",
	}
	if !reflect.DeepEqual(cfg.Routing, wantRouting) {
		t.Errorf("routing = %+v, want %+v", cfg.Routing, wantRouting)
	}
	if !reflect.DeepEqual(cfg.Monitor, wantMonitor) {
		t.Errorf("monitor = %+v, want %+v", cfg.Monitor, wantMonitor)
	}
	if user, pw := cfg.MonitorCredentials(); user != "monitor" || pw != "m0n" {
		t.Errorf("MonitorCredentials = %q, %q; want monitor's own", user, pw)
	}
}

// TestReplicaReadsBooleans covers on and off written unquoted, which YAML
// 1.1 parsers read as booleans, and true and false written as such.
func TestReplicaReadsBooleans(t *testing.T) {
	tests := []struct {
		value string
		env   string
		want  ReplicaReads
	}{
		{value: "on", want: ReplicaReadsOn},
		{value: "off", want: ReplicaReadsOff},
		{value: `"on"`, want: ReplicaReadsOn},
		{value: `'off'`, want: ReplicaReadsOff},
		{value: "true", want: ReplicaReadsOn},
		{value: "false", want: ReplicaReadsOff},
		{value: "include_primary", want: ReplicaReadsIncludePrimary},
		{value: "on", env: "false", want: ReplicaReadsOff},
		{value: "off", env: "true", want: ReplicaReadsOn},
		{value: "on", env: "off", want: ReplicaReadsOff},
	}
	for _, tt := range tests {
		t.Run(tt.value+"/"+tt.env, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("SHARDGATE_ROUTING_REPLICA_READS", tt.env)
			cfg, err := Load(writeFile(t, minimalYAML+"routing:\n  replica_reads: "+tt.value+"\n"), nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Routing.ReplicaReads != tt.want {
				t.Errorf("got %q, want %q", cfg.Routing.ReplicaReads, tt.want)
			}
		})
	}
	t.Run("read_your_writes: off and false", func(t *testing.T) {
		for _, value := range []string{"off", "false"} {
			clearEnv(t)
			cfg, err := Load(writeFile(t, minimalYAML+"routing:\n  read_your_writes: "+value+"\n"), nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Routing.ReadYourWrites != RYWOff {
				t.Errorf("%s: got %q, want off", value, cfg.Routing.ReadYourWrites)
			}
		}
	})
}

func TestRoutingMonitorOverrides(t *testing.T) {
	file := minimalYAML + "routing:\n  ryw_wait: 20ms\nmonitor:\n  max_replica_lag_bytes: 16MB\n"
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*Config) (got, want any)
	}{
		{
			name:  "env enum",
			env:   map[string]string{"SHARDGATE_ROUTING_READ_YOUR_WRITES": "time"},
			check: func(c *Config) (any, any) { return c.Routing.ReadYourWrites, RYWTime },
		},
		{
			name:  "env size beats file",
			env:   map[string]string{"SHARDGATE_MONITOR_MAX_REPLICA_LAG_BYTES": "1GB"},
			check: func(c *Config) (any, any) { return c.Monitor.MaxReplicaLagBytes, ByteSize(1 << 30) },
		},
		{
			name:  "env plain number of bytes",
			env:   map[string]string{"SHARDGATE_MONITOR_MAX_REPLICA_LAG_BYTES": "1000"},
			check: func(c *Config) (any, any) { return c.Monitor.MaxReplicaLagBytes, ByteSize(1000) },
		},
		{
			name:  "size from file",
			check: func(c *Config) (any, any) { return c.Monitor.MaxReplicaLagBytes, 16 * Megabyte },
		},
		{
			name:  "env password",
			env:   map[string]string{"SHARDGATE_MONITOR_USER": "mon", "SHARDGATE_MONITOR_PASSWORD": "pw"},
			check: func(c *Config) (any, any) { u, p := c.MonitorCredentials(); return u + ":" + p, "mon:pw" },
		},
		{
			name:  "flag zero duration beats file",
			args:  []string{"--routing.ryw_wait=0s"},
			check: func(c *Config) (any, any) { return c.Routing.RYWWait, time.Duration(0) },
		},
		{
			name:  "flag size beats env",
			env:   map[string]string{"SHARDGATE_MONITOR_MAX_REPLICA_LAG_BYTES": "1GB"},
			args:  []string{"--monitor.max_replica_lag_bytes=0"},
			check: func(c *Config) (any, any) { return c.Monitor.MaxReplicaLagBytes, ByteSize(0) },
		},
		{
			name: "flag enums",
			args: []string{"--routing.replica_reads=off", "--routing.replica_choice", "random"},
			check: func(c *Config) (any, any) {
				return []any{c.Routing.ReplicaReads, c.Routing.ReplicaChoice}, []any{ReplicaReadsOff, ChoiceRandom}
			},
		},
		{
			name: "flag int and string",
			args: []string{"--routing.parse_cache_size=5", "--routing.zone=b", "--monitor.database=x"},
			check: func(c *Config) (any, any) {
				return []any{c.Routing.ParseCacheSize, c.Routing.Zone, c.Monitor.Database}, []any{5, "b", "x"}
			},
		},
		{
			name:  "unset size flag keeps the file's value",
			args:  []string{"--monitor.interval=1s"},
			check: func(c *Config) (any, any) { return c.Monitor.MaxReplicaLagBytes, 16 * Megabyte },
		},
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
			if got, want := tt.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("no flag for the password", func(t *testing.T) {
		fs := pflag.NewFlagSet("shardgate", pflag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		RegisterFlags(fs)
		if err := fs.Parse([]string{"--monitor.password=x"}); err == nil {
			t.Error("--monitor.password was accepted")
		}
	})
}

func TestValidateRoutingMonitor(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // exact lines; nil means valid
	}{
		{name: "defaults are valid", mutate: func(*Config) {}},
		{
			name: "limits are valid",
			mutate: func(c *Config) {
				c.Routing.RYWWait, c.Routing.ParseCacheSize = 10*time.Second, 1
				c.Routing.WriteFunctions = []string{"f", "add_order2", "_x"}
				c.Monitor.Interval, c.Monitor.BanMin, c.Monitor.BanMax = 10*time.Millisecond, time.Second, time.Second
				c.Monitor.MaxReplicaLag, c.Monitor.MaxReplicaLagBytes = 0, 0
				c.Monitor.User, c.Monitor.Password = "mon", ""
			},
		},
		{
			name:   "replica_reads",
			mutate: func(c *Config) { c.Routing.ReplicaReads = "maybe" },
			want:   []string{`routing.replica_reads: expected on, off or include_primary, got "maybe"`},
		},
		{
			name:   "replica_choice",
			mutate: func(c *Config) { c.Routing.ReplicaChoice = "roundrobin" },
			want:   []string{`routing.replica_choice: expected round_robin, least_connections or random, got "roundrobin"`},
		},
		{
			name:   "read_your_writes",
			mutate: func(c *Config) { c.Routing.ReadYourWrites = "on" },
			want:   []string{`routing.read_your_writes: expected lsn, time or off, got "on"`},
		},
		{
			name:   "ryw_wait too long",
			mutate: func(c *Config) { c.Routing.RYWWait = 11 * time.Second },
			want:   []string{`routing.ryw_wait: expected a duration from 0 to 10s such as 50ms (0 means no wait), got 11s`},
		},
		{
			name:   "ryw_wait negative",
			mutate: func(c *Config) { c.Routing.RYWWait = -time.Millisecond },
			want:   []string{`routing.ryw_wait: expected a duration from 0 to 10s such as 50ms (0 means no wait), got -1ms`},
		},
		{
			name:   "ryw_window",
			mutate: func(c *Config) { c.Routing.RYWWindow = 0 },
			want:   []string{`routing.ryw_window: expected a duration > 0 such as 5s, got "0s"`},
		},
		{
			name:   "parse_cache_size",
			mutate: func(c *Config) { c.Routing.ParseCacheSize = 0 },
			want:   []string{`routing.parse_cache_size: expected an integer >= 1, got 0`},
		},
		{
			name:   "write_functions",
			mutate: func(c *Config) { c.Routing.WriteFunctions = []string{"ok", "", "Foo()", "public.f"} },
			want: []string{
				`routing.write_functions[1]: expected a function name (lower-case letters, digits, _), got ""`,
				`routing.write_functions[2]: expected a function name (lower-case letters, digits, _), got "Foo()"`,
				`routing.write_functions[3]: expected a function name (lower-case letters, digits, _), got "public.f"`,
			},
		},
		{
			name:   "interval too short",
			mutate: func(c *Config) { c.Monitor.Interval = 5 * time.Millisecond },
			want:   []string{`monitor.interval: expected a duration >= 10ms such as 100ms, got 5ms`},
		},
		{
			name:   "timeout",
			mutate: func(c *Config) { c.Monitor.Timeout = 0 },
			want:   []string{`monitor.timeout: expected a duration > 0 such as 1s, got "0s"`},
		},
		{
			name:   "ban_min above ban_max",
			mutate: func(c *Config) { c.Monitor.BanMin = 20 * time.Second },
			want:   []string{`monitor.ban_min: expected a duration > 0 and <= monitor.ban_max (10s), got 20s`},
		},
		{
			name:   "ban_min zero",
			mutate: func(c *Config) { c.Monitor.BanMin = 0 },
			want:   []string{`monitor.ban_min: expected a duration > 0 and <= monitor.ban_max (10s), got 0s`},
		},
		{
			name:   "ban_max zero",
			mutate: func(c *Config) { c.Monitor.BanMax = 0 },
			want:   []string{`monitor.ban_max: expected a duration > 0 such as 10s, got "0s"`},
		},
		{
			name:   "negative lags",
			mutate: func(c *Config) { c.Monitor.MaxReplicaLag, c.Monitor.MaxReplicaLagBytes = -time.Second, -Megabyte },
			want: []string{
				`monitor.max_replica_lag: expected a duration >= 0 such as 10s (0 means no limit), got -1s`,
				`monitor.max_replica_lag_bytes: expected a size >= 0 such as 64MB (0 means no limit), got -1MB`,
			},
		},
		{
			name:   "password without user",
			mutate: func(c *Config) { c.Monitor.Password = "secret" },
			want:   []string{`monitor.password: set without monitor.user (value not shown); set both, or neither to use the first user's server credentials`},
		},
		{
			name:   "database",
			mutate: func(c *Config) { c.Monitor.Database = "" },
			want:   []string{`monitor.database: required (default postgres)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			if got := problems(c.Validate()); !slices.Equal(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadErrorsRoutingMonitor(t *testing.T) {
	tests := []struct {
		name string
		body string
		env  map[string]string
		want string
	}{
		{
			name: "size",
			body: "monitor:\n  max_replica_lag_bytes: lots\n",
			want: `monitor.max_replica_lag_bytes: expected a size such as 64MB, got "lots"`,
		},
		{
			name: "size unit in the wrong case",
			body: "monitor:\n  max_replica_lag_bytes: 64mb\n",
			want: `monitor.max_replica_lag_bytes: expected a size such as 64MB, got "64mb" (units are case-sensitive: B, kB, MB, GB, TB)`,
		},
		{
			name: "size too large",
			body: "monitor:\n  max_replica_lag_bytes: 9000000TB\n",
			want: `monitor.max_replica_lag_bytes: expected a size of at most 8388607TB, got "9000000TB"`,
		},
		{
			name: "size from env",
			env:  map[string]string{"SHARDGATE_MONITOR_MAX_REPLICA_LAG_BYTES": "1 GiB"},
			want: `monitor.max_replica_lag_bytes: expected a size such as 64MB, got "1 GiB" (from SHARDGATE_MONITOR_MAX_REPLICA_LAG_BYTES)`,
		},
		{
			name: "size as a list",
			body: "monitor:\n  max_replica_lag_bytes: [1]\n",
			want: `monitor.max_replica_lag_bytes: expected a size such as 64MB, got a list`,
		},
		{
			name: "negative size from the file",
			body: "monitor:\n  max_replica_lag_bytes: -1\n",
			want: `monitor.max_replica_lag_bytes: expected a size >= 0 such as 64MB (0 means no limit), got -1B`,
		},
		{
			name: "replica_reads from env",
			env:  map[string]string{"SHARDGATE_ROUTING_REPLICA_READS": "maybe"},
			want: `routing.replica_reads: expected on, off or include_primary, got "maybe" (from SHARDGATE_ROUTING_REPLICA_READS)`,
		},
		{
			name: "replica_reads as a number",
			body: "routing:\n  replica_reads: 1\n",
			want: `routing.replica_reads: expected on, off or include_primary, got 1`,
		},
		{
			name: "read_your_writes true",
			body: "routing:\n  read_your_writes: true\n",
			want: `routing.read_your_writes: expected lsn, time or off, got true`,
		},
		{
			name: "write_functions as a string",
			body: "routing:\n  write_functions: add_order\n",
			want: `routing.write_functions: expected a list, got "add_order"`,
		},
		{
			name: "write_functions item",
			body: "routing:\n  write_functions: [a, b, Foo()]\n",
			want: `routing.write_functions[2]: expected a function name (lower-case letters, digits, _), got "Foo()"`,
		},
		{
			name: "write_functions from env is ignored",
			env:  map[string]string{"SHARDGATE_ROUTING_WRITE_FUNCTIONS": "x", "SHARDGATE_ROUTING_RYW_WAIT": "1h"},
			want: `routing.ryw_wait: expected a duration from 0 to 10s such as 50ms (0 means no wait), got 1h0m0s (from SHARDGATE_ROUTING_RYW_WAIT)`,
		},
		{
			name: "unknown key",
			body: "monitor:\n  ban_mx: 1s\n",
			want: `unknown key "monitor.ban_mx" (did you mean "monitor.ban_max"?)`,
		},
		{
			name: "password as a number is not echoed",
			body: "monitor:\n  user: mon\n  password: 0123\n",
			want: `monitor.password: expected a string, got a number (put it in quotes)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := Load(writeFile(t, minimalYAML+tt.body), nil)
			got := problems(err)
			if !slices.Contains(got, tt.want) {
				t.Errorf("missing line %q in:\n%v", tt.want, err)
			}
			if len(got) != 1 {
				t.Errorf("want one problem, got:\n%v", err)
			}
			if err != nil && strings.Contains(err.Error(), "0123") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestRedactedMonitor(t *testing.T) {
	c := validConfig()
	c.Monitor.User, c.Monitor.Password = "mon", "m0n-secret"
	c.Routing.WriteFunctions = []string{"f"}
	r := c.Redacted()
	if r.Monitor.Password != "******" || r.Monitor.User != "mon" {
		t.Errorf("monitor = %q/%q, want mon/******", r.Monitor.User, r.Monitor.Password)
	}
	if c.Monitor.Password != "m0n-secret" {
		t.Error("Redacted changed the original")
	}
	r.Routing.WriteFunctions[0] = "changed"
	if c.Routing.WriteFunctions[0] != "f" {
		t.Error("Redacted shares write_functions with the original")
	}
	out, err := yaml.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "m0n-secret") {
		t.Errorf("output shows the monitor password:\n%s", out)
	}
	for _, want := range []string{"max_replica_lag_bytes: 64MB", `replica_reads: "on"`, "ryw_wait: 50ms", `password: '******'`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if len(Default().Redacted().Monitor.Password) != 0 {
		t.Error("an unset password should stay empty")
	}
}

// TestPrintedConfigReadsBack checks that what check-config prints is a
// valid configuration with the same values.
func TestPrintedConfigReadsBack(t *testing.T) {
	clearEnv(t)
	c := validConfig()
	c.Monitor.MaxReplicaLagBytes = 3 << 29
	c.Routing.ReplicaReads = ReplicaReadsOff
	c.Routing.WriteFunctions = []string{"f"}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(writeFile(t, string(out)), nil)
	if err != nil {
		t.Fatalf("Load of printed config: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back.Routing, c.Routing) || !reflect.DeepEqual(back.Monitor, c.Monitor) {
		t.Errorf("got %+v %+v, want %+v %+v", back.Routing, back.Monitor, c.Routing, c.Monitor)
	}
}

func TestMonitorCredentials(t *testing.T) {
	tests := []struct {
		name         string
		mutate       func(*Config)
		user, passwd string
	}{
		{"first user's server credentials", func(*Config) {}, "app", "app"},
		{
			"defaults applied to a hand-built config",
			func(c *Config) { c.Users[0] = User{Name: "web", Password: "pw"} },
			"web", "pw",
		},
		{
			"explicit server credentials",
			func(c *Config) { c.Users[0].ServerUser, c.Users[0].ServerPassword = "srv", "spw" },
			"srv", "spw",
		},
		{"own user without password", func(c *Config) { c.Monitor.User = "mon" }, "mon", ""},
		{"no users", func(c *Config) { c.Users = nil }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			if u, p := c.MonitorCredentials(); u != tt.user || p != tt.passwd {
				t.Errorf("got %q, %q; want %q, %q", u, p, tt.user, tt.passwd)
			}
		})
	}
}
