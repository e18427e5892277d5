package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

const examplePath = "../../../shardgate.example.yaml"

// minimalYAML is the smallest valid file: everything else is defaulted.
const minimalYAML = `
users:
  - name: app
    password: app
shards:
  - name: s0
    hosts:
      - addr: 127.0.0.1:15432
`

// clearEnv blanks every variable Load reads, so that the environment the
// tests run in cannot change their outcome (viper ignores empty ones).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, s := range settings {
		t.Setenv(envVar(s.key), "")
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shardgate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problems splits a Load or Validate error into its lines.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(writeFile(t, minimalYAML), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	def := Default()
	tests := []struct {
		name      string
		got, want any
	}{
		{"listen.addr", cfg.Listen.Addr, "127.0.0.1:6432"},
		{"listen.tls.mode", cfg.Listen.TLS.Mode, ClientTLSDisable},
		{"pool.mode", cfg.Pool.Mode, PoolTransaction},
		{"pool.size", cfg.Pool.Size, 20},
		{"pool.min_idle", cfg.Pool.MinIdle, 0},
		{"pool.checkout_timeout", cfg.Pool.CheckoutTimeout, 5 * time.Second},
		{"pool.idle_timeout", cfg.Pool.IdleTimeout, 10 * time.Minute},
		{"pool.max_lifetime", cfg.Pool.MaxLifetime, time.Hour},
		{"pool.prepared_cache_size", cfg.Pool.PreparedCacheSize, 512},
		{"pool.max_client_conn", cfg.Pool.MaxClientConn, 10000},
		{"backend.connect_timeout", cfg.Backend.ConnectTimeout, 5 * time.Second},
		{"backend.tls", cfg.Backend.TLS, ServerTLSDisable},
		{"log.level", cfg.Log.Level, LogInfo},
		{"log.format", cfg.Log.Format, LogFormatAuto},
		{"scalars equal Default()", cfg.Pool, def.Pool},
		{"users[0].auth", cfg.Users[0].Auth, AuthSCRAM},
		{"users[0].server_user", cfg.Users[0].ServerUser, "app"},
		{"users[0].server_password", cfg.Users[0].ServerPassword, "app"},
		{"shards[0].hosts[0].role", cfg.Shards[0].Hosts[0].Role, RoleAuto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestLoadWithoutFile(t *testing.T) {
	clearEnv(t)
	_, err := Load("", nil)
	got := problems(err)
	for _, want := range []string{
		"users: at least one user is required",
		"shards: at least one shard is required",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestExampleFile(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(examplePath, nil)
	if err != nil {
		t.Fatalf("the example file must validate:\n%v", err)
	}
	var addrs []string
	for _, s := range cfg.Shards {
		for _, h := range s.Hosts {
			addrs = append(addrs, s.Name+" "+h.Addr+" "+string(h.Role))
		}
	}
	want := []string{
		"s0 127.0.0.1:15432 primary", "s0 127.0.0.1:15433 replica",
		"s1 127.0.0.1:15442 primary", "s1 127.0.0.1:15443 replica",
	}
	if !slices.Equal(addrs, want) {
		t.Errorf("hosts = %v, want %v", addrs, want)
	}
	if u := cfg.User("app"); u == nil || u.Password != "app" || u.ServerPassword != "app" {
		t.Errorf("user app = %+v", u)
	}
}

// TestExampleFileHasEveryKey keeps the example file complete as keys are
// added.
func TestExampleFileHasEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	yamlKeys("", doc, got)
	want := map[string]bool{}
	structKeys("", reflect.TypeFor[Config](), want)
	for k := range want {
		if !got[k] {
			t.Errorf("example file lacks %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("example file has unknown key %s", k)
		}
	}
}

func yamlKeys(prefix string, v any, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			yamlKeys(prefix+"."+k, child, out)
		}
	case []any:
		// A list of scalars, empty or not, is one key, as a list of
		// records is one key per field.
		scalars := true
		for _, child := range v {
			if _, ok := child.(map[string]any); ok {
				yamlKeys(prefix+"[]", child, out)
				scalars = false
			}
		}
		if scalars {
			out[strings.TrimPrefix(prefix, ".")] = true
		}
	default:
		out[strings.TrimPrefix(prefix, ".")] = true
	}
}

func structKeys(prefix string, t reflect.Type, out map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + "." + f.Tag.Get("mapstructure")
		switch {
		case f.Type.Kind() == reflect.Struct:
			structKeys(key, f.Type, out)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			structKeys(key+"[]", f.Type.Elem(), out)
		default:
			out[strings.TrimPrefix(key, ".")] = true
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := minimalYAML + `
pool:
  mode: session
  checkout_timeout: 7s
listen:
  addr: 127.0.0.1:7000
`
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*Config) (got, want any)
	}{
		{
			name:  "file beats default",
			check: func(c *Config) (any, any) { return c.Pool.Mode, PoolSession },
		},
		{
			name:  "env beats file",
			env:   map[string]string{"SHARDGATE_POOL_MODE": "statement"},
			check: func(c *Config) (any, any) { return c.Pool.Mode, PoolStatement },
		},
		{
			name:  "env duration",
			env:   map[string]string{"SHARDGATE_POOL_CHECKOUT_TIMEOUT": "2s"},
			check: func(c *Config) (any, any) { return c.Pool.CheckoutTimeout, 2 * time.Second },
		},
		{
			name:  "env addr",
			env:   map[string]string{"SHARDGATE_LISTEN_ADDR": "0.0.0.0:6432"},
			check: func(c *Config) (any, any) { return c.Listen.Addr, "0.0.0.0:6432" },
		},
		{
			name:  "env nested tls mode",
			env:   map[string]string{"SHARDGATE_BACKEND_TLS": "verify-full"},
			check: func(c *Config) (any, any) { return c.Backend.TLS, ServerTLSVerifyFull },
		},
		{
			name:  "env int beats default",
			env:   map[string]string{"SHARDGATE_POOL_SIZE": "40"},
			check: func(c *Config) (any, any) { return c.Pool.Size, 40 },
		},
		{
			name:  "flag beats env",
			env:   map[string]string{"SHARDGATE_POOL_MODE": "statement"},
			args:  []string{"--pool.mode=transaction"},
			check: func(c *Config) (any, any) { return c.Pool.Mode, PoolTransaction },
		},
		{
			name:  "flag duration beats file",
			args:  []string{"--pool.checkout_timeout=3s"},
			check: func(c *Config) (any, any) { return c.Pool.CheckoutTimeout, 3 * time.Second },
		},
		{
			name:  "flag int",
			args:  []string{"--pool.size", "7"},
			check: func(c *Config) (any, any) { return c.Pool.Size, 7 },
		},
		{
			name:  "unset flag does not override env",
			env:   map[string]string{"SHARDGATE_POOL_MODE": "statement"},
			args:  []string{"--log.level=debug"},
			check: func(c *Config) (any, any) { return c.Pool.Mode, PoolStatement },
		},
		{
			name:  "unset flag does not override file",
			args:  []string{"--config=x.yaml"},
			check: func(c *Config) (any, any) { return c.Listen.Addr, "127.0.0.1:7000" },
		},
		{
			name:  "lists come from the file only",
			env:   map[string]string{"SHARDGATE_USERS": "x", "SHARDGATE_SHARDS": "y"},
			check: func(c *Config) (any, any) { return len(c.Users) + len(c.Shards), 2 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("shardgate", pflag.ContinueOnError)
			fs.String("config", "", "the caller's own flag, unknown to the config")
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
}

func TestRegisterFlags(t *testing.T) {
	fs := pflag.NewFlagSet("shardgate", pflag.ContinueOnError)
	RegisterFlags(fs)
	def := Default()
	for _, s := range settings {
		t.Run(s.key, func(t *testing.T) {
			f := fs.Lookup(s.key)
			if envOnly[s.key] {
				if f != nil {
					t.Error("a secret has a flag, which ps would show")
				}
				return
			}
			if f == nil {
				t.Fatal("flag not defined")
			}
			if got, want := f.DefValue, fmt.Sprint(s.get(def)); got != want {
				t.Errorf("default %q, want %q", got, want)
			}
			if !strings.Contains(f.Usage, envVar(s.key)) {
				t.Errorf("usage %q does not name %s", f.Usage, envVar(s.key))
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	clearEnv(t)
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("got %v, want a not-exist error naming the file", err)
	}
}

func TestRedacted(t *testing.T) {
	c := validConfig()
	c.Users[0].ScramVerifier = scramVerifier("k")
	r := c.Redacted()
	tests := []struct {
		name      string
		got, want string
	}{
		{"password", r.Users[0].Password, "******"},
		{"server_password", r.Users[0].ServerPassword, "******"},
		{"scram_verifier", r.Users[0].ScramVerifier, "******"},
		{"md5_hash", r.Users[1].MD5Hash, "******"},
		{"unset secret stays empty", r.Users[1].Password, ""},
		{"name kept", r.Users[0].Name, "app"},
		{"server_user kept", r.Users[1].ServerUser, "ro"},
		{"original untouched", c.Users[0].Password, "app"},
		{"host kept", r.Shards[0].Hosts[0].Addr, "127.0.0.1:15432"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	t.Run("deep copy", func(t *testing.T) {
		r.Shards[0].Hosts[0].Addr = "changed"
		if c.Shards[0].Hosts[0].Addr == "changed" {
			t.Error("Redacted shares hosts with the original")
		}
	})
	t.Run("printed form shows no secret", func(t *testing.T) {
		out, err := yaml.Marshal(c.Redacted())
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"password: app", c.Users[0].ScramVerifier, c.Users[1].MD5Hash} {
			if strings.Contains(string(out), secret) {
				t.Errorf("output contains %q:\n%s", secret, out)
			}
		}
		if !strings.Contains(string(out), "checkout_timeout: 5s") {
			t.Errorf("durations should print as text:\n%s", out)
		}
	})
}

func TestUser(t *testing.T) {
	c := validConfig()
	if u := c.User("ro"); u != &c.Users[1] {
		t.Errorf("User(ro) = %p, want %p", u, &c.Users[1])
	}
	if u := c.User("nobody"); u != nil {
		t.Errorf("User(nobody) = %+v, want nil", u)
	}
}

func TestLogLevelSlog(t *testing.T) {
	got := []string{LogDebug.Slog().String(), LogInfo.Slog().String(), LogWarn.Slog().String(), LogError.Slog().String()}
	want := []string{"DEBUG", "INFO", "WARN", "ERROR"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
