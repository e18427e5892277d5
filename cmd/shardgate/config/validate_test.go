package config

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func scramVerifier(secret string) string {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(secret, 32)[:32]))
	return "SCRAM-SHA-256$4096:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) + "$" + key + ":" + key
}

func md5Hash(password, user string) string {
	sum := md5.Sum([]byte(password + user))
	return "md5" + hex.EncodeToString(sum[:])
}

// validConfig is a valid configuration that tests break one key at a time.
func validConfig() *Config {
	c := Default()
	c.Users = []User{
		{Name: "app", Auth: AuthSCRAM, Password: "app", ServerUser: "app", ServerPassword: "app"},
		{Name: "ro", Auth: AuthMD5, MD5Hash: md5Hash("ro", "ro"), ServerUser: "ro"},
		{Name: "admin", Auth: AuthTrust, ServerUser: "admin"},
	}
	c.Shards = []Shard{
		{Name: "s0", Hosts: []Host{{Addr: "127.0.0.1:15432", Role: RolePrimary}, {Addr: "127.0.0.1:15433", Role: RoleReplica}}},
		{Name: "s1", Hosts: []Host{{Addr: "127.0.0.1:15442", Role: RoleAuto}, {Addr: "[::1]:15443", Role: RoleAuto}}},
	}
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // exact lines; nil means valid
	}{
		{name: "valid", mutate: func(*Config) {}},
		{
			name:   "host without port",
			mutate: func(c *Config) { c.Shards[1].Hosts[0].Addr = "db1" },
			want:   []string{`shards[1].hosts[0].addr: expected host:port, got "db1"`},
		},
		{
			name:   "host port out of range",
			mutate: func(c *Config) { c.Shards[0].Hosts[1].Addr = "db1:70000" },
			want:   []string{`shards[0].hosts[1].addr: expected host:port with a port from 1 to 65535, got "db1:70000"`},
		},
		{
			name:   "listen on any interface and a free port",
			mutate: func(c *Config) { c.Listen.Addr = ":0" },
		},
		{
			name:   "pool mode typo",
			mutate: func(c *Config) { c.Pool.Mode = "sesion" },
			want:   []string{`pool.mode: expected one of transaction, session, statement, got "sesion"`},
		},
		{
			name: "scram user without secret",
			mutate: func(c *Config) {
				c.Users[0].Password, c.Users[0].ServerPassword = "", ""
			},
			want: []string{`users[0]: one of password or scram_verifier is required for auth scram-sha-256`},
		},
		{
			name:   "password user without secret",
			mutate: func(c *Config) { c.Users[2].Auth = AuthPassword },
			want:   []string{`users[2]: one of password, scram_verifier or md5_hash is required for auth password`},
		},
		{
			name:   "password user with only a hash",
			mutate: func(c *Config) { c.Users[1].Auth = AuthPassword },
		},
		{
			name:   "duplicate user",
			mutate: func(c *Config) { c.Users[2].Name = "app" },
			want:   []string{`users[2].name: duplicate user "app" (also users[0])`},
		},
		{
			name:   "user without name",
			mutate: func(c *Config) { c.Users[1].Name = "" },
			want:   []string{`users[1].name: required`},
		},
		{
			name:   "zero checkout timeout",
			mutate: func(c *Config) { c.Pool.CheckoutTimeout = 0 },
			want:   []string{`pool.checkout_timeout: expected a duration > 0 such as 5s, got "0s"`},
		},
		{
			name:   "negative idle timeout",
			mutate: func(c *Config) { c.Pool.IdleTimeout = -time.Second },
			want:   []string{`pool.idle_timeout: expected a duration >= 0 such as 10m (0 means never), got "-1s"`},
		},
		{
			name:   "zero durations mean never",
			mutate: func(c *Config) { c.Pool.IdleTimeout, c.Pool.MaxLifetime = 0, 0 },
		},
		{
			name:   "no users",
			mutate: func(c *Config) { c.Users = nil },
			want:   []string{`users: at least one user is required`},
		},
		{
			name:   "no shards",
			mutate: func(c *Config) { c.Shards = []Shard{} },
			want:   []string{`shards: at least one shard is required`},
		},
		{
			name: "md5 with only a scram verifier",
			mutate: func(c *Config) {
				c.Users[1].MD5Hash, c.Users[1].ScramVerifier = "", scramVerifier("x")
			},
			want: []string{`users[1]: auth md5 cannot work with only scram_verifier: md5 needs the password or its md5 hash, which a SCRAM verifier does not contain; set password or md5_hash, or use auth scram-sha-256`},
		},
		{
			name: "scram with only an md5 hash",
			mutate: func(c *Config) {
				c.Users[0].Password, c.Users[0].ServerPassword, c.Users[0].MD5Hash = "", "", md5Hash("app", "app")
			},
			want: []string{`users[0]: auth scram-sha-256 cannot work with only md5_hash: an md5 hash cannot answer a SCRAM exchange; set password or scram_verifier, or use auth md5`},
		},
		{
			name: "scram verifier without server password is allowed",
			mutate: func(c *Config) {
				c.Users[0].Password, c.Users[0].ServerPassword, c.Users[0].ScramVerifier = "", "", scramVerifier("x")
			},
		},
		{
			name:   "trust needs no password",
			mutate: func(c *Config) { c.Users[0] = User{Name: "app", Auth: AuthTrust} },
		},
		{
			name:   "unknown auth",
			mutate: func(c *Config) { c.Users[0].Auth = "scram" },
			want:   []string{`users[0].auth: expected one of scram-sha-256, md5, password, trust, got "scram"`},
		},
		{
			name:   "malformed verifier",
			mutate: func(c *Config) { c.Users[0].ScramVerifier = "SCRAM-SHA-256$4096:c2FsdA==$secret" },
			want:   []string{`users[0].scram_verifier: expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> as in pg_authid (value not shown)`},
		},
		{
			name:   "malformed md5 hash",
			mutate: func(c *Config) { c.Users[1].MD5Hash = "md5secret" },
			want:   []string{`users[1].md5_hash: expected "md5" followed by 32 hex digits as in pg_authid (value not shown)`},
		},
		{
			name:   "hash pasted as password",
			mutate: func(c *Config) { c.Users[0].Password = md5Hash("app", "app") },
			want:   []string{`users[0].password: looks like an md5 hash (value not shown); put it in md5_hash instead`},
		},
		{
			name:   "bad shard name",
			mutate: func(c *Config) { c.Shards[0].Name = "Shard 0" },
			want:   []string{`shards[0].name: expected lower-case letters, digits, _ and - only, got "Shard 0"`},
		},
		{
			name:   "duplicate shard",
			mutate: func(c *Config) { c.Shards[1].Name = "s0" },
			want:   []string{`shards[1].name: duplicate shard "s0" (also shards[0])`},
		},
		{
			name:   "shard without hosts",
			mutate: func(c *Config) { c.Shards[1].Hosts = nil },
			want:   []string{`shards[1].hosts: at least one host is required`},
		},
		{
			name:   "host in two shards",
			mutate: func(c *Config) { c.Shards[1].Hosts[0].Addr = "127.0.0.1:15432" },
			want:   []string{`shards[1].hosts[0].addr: duplicate host "127.0.0.1:15432" (also shards[0].hosts[0])`},
		},
		{
			name:   "two primaries",
			mutate: func(c *Config) { c.Shards[0].Hosts[1].Role = RolePrimary },
			want:   []string{`shards[0].hosts[1].role: shard "s0" already has a primary (shards[0].hosts[0]); use auto to follow failovers`},
		},
		{
			name: "pool sizes",
			mutate: func(c *Config) {
				c.Pool.MinIdle, c.Pool.PreparedCacheSize, c.Pool.MaxClientConn = 21, 0, -1
			},
			want: []string{
				`pool.min_idle: expected an integer from 0 to pool.size (20), got 21`,
				`pool.prepared_cache_size: expected an integer >= 1, got 0`,
				`pool.max_client_conn: expected an integer >= 1, got -1`,
			},
		},
		{
			name:   "tls without certificate",
			mutate: func(c *Config) { c.Listen.TLS.Mode = ClientTLSRequire },
			want: []string{
				`listen.tls.cert_file: required when listen.tls.mode is require`,
				`listen.tls.key_file: required when listen.tls.mode is require`,
			},
		},
		{
			name: "tls files missing",
			mutate: func(c *Config) {
				c.Listen.TLS = TLSConfig{Mode: ClientTLSAllow, CertFile: "/nonexistent/c.pem", KeyFile: examplePath}
				c.Backend.CAFile = "/nonexistent/ca.pem"
			},
			want: []string{
				`listen.tls.cert_file: cannot read "/nonexistent/c.pem": no such file or directory`,
				`backend.ca_file: cannot read "/nonexistent/ca.pem": no such file or directory`,
			},
		},
		{
			name: "every problem at once",
			mutate: func(c *Config) {
				c.Pool.Mode, c.Log.Level, c.Log.Format, c.Backend.TLS = "x", "verbose", "xml", "on"
				c.Backend.ConnectTimeout, c.Pool.Size = 0, 0
			},
			want: []string{
				`pool.mode: expected one of transaction, session, statement, got "x"`,
				`pool.size: expected an integer >= 1, got 0`,
				`backend.connect_timeout: expected a duration > 0 such as 5s, got "0s"`,
				`backend.tls: expected one of disable, prefer, require, verify-full, got "on"`,
				`log.level: expected one of debug, info, warn, error, got "verbose"`,
				`log.format: expected one of auto, text, json, got "xml"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			if got := problems(err); !slices.Equal(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var errs Errors
			if err != nil && !errors.As(err, &errs) {
				t.Errorf("error is %T, want Errors", err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		env  map[string]string
		want []string // lines that must appear; "$FILE" is the file's path
	}{
		{
			name: "unknown key",
			body: minimalYAML + "pool:\n  sise: 3\n",
			want: []string{`unknown key "pool.sise" (did you mean "pool.size"?)`},
		},
		{
			name: "unknown key without suggestion",
			body: minimalYAML + "frobnicate: true\n",
			want: []string{`unknown key "frobnicate"`},
		},
		{
			name: "unknown key in a list item",
			body: minimalYAML + "    passwrd: x\n",
			want: []string{`unknown key "shards[0].passwrd"`},
		},
		{
			name: "unknown key in a user",
			body: "users:\n  - name: app\n    password: app\n    pasword: app\n" + minimalYAML[strings.Index(minimalYAML, "shards:"):],
			want: []string{`unknown key "users[0].pasword" (did you mean "users[0].password"?)`},
		},
		{
			name: "integer expected",
			body: minimalYAML + "pool:\n  size: abc\n",
			want: []string{`pool.size: expected an integer, got "abc"`},
		},
		{
			name: "integer expected from env",
			body: minimalYAML,
			env:  map[string]string{"SHARDGATE_POOL_SIZE": "abc"},
			want: []string{`pool.size: expected an integer, got "abc" (from SHARDGATE_POOL_SIZE)`},
		},
		{
			name: "bad value from env",
			body: minimalYAML,
			env:  map[string]string{"SHARDGATE_POOL_MODE": "sesion"},
			want: []string{`pool.mode: expected one of transaction, session, statement, got "sesion" (from SHARDGATE_POOL_MODE)`},
		},
		{
			name: "duration without unit",
			body: minimalYAML + "pool:\n  checkout_timeout: 5\n",
			want: []string{`pool.checkout_timeout: expected a duration with a unit such as 5s, 250ms or 10m, got 5`},
		},
		{
			name: "bad duration",
			body: minimalYAML + "backend:\n  connect_timeout: soon\n",
			want: []string{`backend.connect_timeout: expected a duration such as 5s, 250ms or 10m, got "soon"`},
		},
		{
			name: "number where a string is expected is not echoed",
			body: "users:\n  - name: app\n    password: 0123\n" + minimalYAML[strings.Index(minimalYAML, "shards:"):],
			want: []string{`users[0].password: expected a string, got a number (put it in quotes)`},
		},
		{
			name: "scalar where a section is expected",
			body: minimalYAML + "pool: big\n",
			want: []string{`pool: expected a mapping of keys, got "big"`},
		},
		{
			name: "scalar where a list is expected",
			body: "users: app\n" + minimalYAML[strings.Index(minimalYAML, "shards:"):],
			want: []string{`users: expected a list, got "app"`},
		},
		{
			name: "yaml syntax error",
			body: "pool:\n  size: 3\n   mode: session\n",
			want: []string{`$FILE:3: mapping values are not allowed in this context`},
		},
		{
			name: "yaml tab",
			body: "pool:\n\tsize: 3\n",
			want: []string{`$FILE:2: found character that cannot start any token (indent with spaces: YAML does not allow tabs)`},
		},
		{
			name: "yaml duplicate key",
			body: "pool:\n  size: 3\npool:\n  size: 4\n",
			want: []string{`$FILE:3: mapping key "pool" already defined at line 1`},
		},
		{
			name: "decode and validation problems together",
			body: "users:\n  - name: app\nshards: []\npool:\n  size: x\n  mode: sesion\n",
			want: []string{
				`pool.size: expected an integer, got "x"`,
				`pool.mode: expected one of transaction, session, statement, got "sesion"`,
				`users[0]: one of password or scram_verifier is required for auth scram-sha-256`,
				`shards: at least one shard is required`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := writeFile(t, tt.body)
			cfg, err := Load(path, nil)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Error("Load returned a config with an error")
			}
			got := problems(err)
			for _, want := range tt.want {
				want = strings.ReplaceAll(want, "$FILE", path)
				if !slices.Contains(got, want) {
					t.Errorf("missing line %q in:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), "0123") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestLoadErrorsAreTyped(t *testing.T) {
	clearEnv(t)
	_, err := Load(writeFile(t, minimalYAML+"pool:\n  sise: 3\n  mode: x\n"), nil)
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || uk.Key != "pool.sise" || uk.Suggestion != "pool.size" {
		t.Errorf("UnknownKeyError = %+v in %v", uk, err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "pool.mode" {
		t.Errorf("FieldError = %+v in %v", fe, err)
	}
}

func TestEditDistanceSuggestions(t *testing.T) {
	tests := []struct{ parent, name, want string }{
		{"pool", "sise", "pool.size"},
		{"", "pol", "pool"},
		{"", "user", "users"},
		{"listen.tls", "cert-file", "listen.tls.cert_file"},
		{"shards[3].hosts[1]", "adr", "shards[3].hosts[1].addr"},
		{"pool", "x", ""},
		{"nosuch", "size", ""},
	}
	for _, tt := range tests {
		t.Run(tt.parent+"."+tt.name, func(t *testing.T) {
			var uk *UnknownKeyError
			if !errors.As(unknownKey(tt.parent, tt.name), &uk) || uk.Suggestion != tt.want {
				t.Errorf("suggestion = %q, want %q", uk.Suggestion, tt.want)
			}
		})
	}
}
