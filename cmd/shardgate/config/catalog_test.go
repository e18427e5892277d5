package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

func TestCatalogDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(writeFile(t, minimalYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := CatalogConfig{PollInterval: time.Second, DirectoryCache: 100_000}
	if cfg.Catalog != want || cfg.Sharding.TwoPhaseCommit {
		t.Fatalf("catalog = %+v, two_phase_commit = %v; want %+v and false", cfg.Catalog, cfg.Sharding.TwoPhaseCommit, want)
	}
}

func TestCatalogFromFileEnvAndFlags(t *testing.T) {
	file := minimalYAML + `
catalog:
  dsn: postgres://shardgate:pw@db:5432/catalog
  poll_interval: 250ms
sharding:
  two_phase_commit: true
`
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*Config) (got, want any)
	}{
		{"file", nil, nil, func(c *Config) (any, any) {
			return []any{c.Catalog.DSN, c.Catalog.PollInterval, c.Sharding.TwoPhaseCommit},
				[]any{"postgres://shardgate:pw@db:5432/catalog", 250 * time.Millisecond, true}
		}},
		{"env dsn", map[string]string{"SHARDGATE_CATALOG_DSN": "host=other dbname=c"}, nil,
			func(c *Config) (any, any) { return c.Catalog.DSN, "host=other dbname=c" }},
		{"env bool", map[string]string{"SHARDGATE_SHARDING_TWO_PHASE_COMMIT": "false"}, nil,
			func(c *Config) (any, any) { return c.Sharding.TwoPhaseCommit, false }},
		{"env cache", map[string]string{"SHARDGATE_CATALOG_DIRECTORY_CACHE": "500"}, nil,
			func(c *Config) (any, any) { return c.Catalog.DirectoryCache, 500 }},
		{"flag bool", nil, []string{"--sharding.two_phase_commit=false"},
			func(c *Config) (any, any) { return c.Sharding.TwoPhaseCommit, false }},
		{"flag duration", nil, []string{"--catalog.poll_interval=2s"},
			func(c *Config) (any, any) { return c.Catalog.PollInterval, 2 * time.Second }},
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
				t.Fatal(err)
			}
			if got, want := tt.check(cfg); !slicesEqualAny(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("dsn has no flag", func(t *testing.T) {
		fs := pflag.NewFlagSet("shardgate", pflag.ContinueOnError)
		RegisterFlags(fs)
		if fs.Lookup("catalog.dsn") != nil {
			t.Error("catalog.dsn has a flag, which ps would show with its password")
		}
	})
}

func slicesEqualAny(a, b any) bool {
	as, ok1 := a.([]any)
	bs, ok2 := b.([]any)
	if ok1 && ok2 {
		return slices.Equal(as, bs)
	}
	return a == b
}

func TestValidateCatalog(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{name: "no catalog", mutate: func(*Config) {}},
		{
			name:   "catalog",
			mutate: func(c *Config) { c.Catalog.DSN = "postgres://u:pw@db/c"; c.Sharding.TwoPhaseCommit = true },
		},
		{
			name:   "two-phase commit without a catalog",
			mutate: func(c *Config) { c.Sharding.TwoPhaseCommit = true },
			want:   []string{"sharding.two_phase_commit: two_phase_commit needs catalog.dsn: commit decisions are recorded in the catalog"},
		},
		{
			name:   "bad dsn",
			mutate: func(c *Config) { c.Catalog.DSN = "postgres://u:secret@db:notaport/c" },
			want:   []string{`catalog.dsn: expected a PostgreSQL connection string such as postgres://user@host:5432/shardgate_catalog or "host=... dbname=..." (value not shown)`},
		},
		{
			name:   "poll too often",
			mutate: func(c *Config) { c.Catalog.PollInterval = time.Millisecond },
			want:   []string{"catalog.poll_interval: expected a duration >= 10ms such as 1s, got 1ms"},
		},
		{
			name:   "no directory cache",
			mutate: func(c *Config) { c.Catalog.DirectoryCache = 0 },
			want:   []string{"catalog.directory_cache: expected an integer >= 1, got 0"},
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

func TestLoadErrorsCatalog(t *testing.T) {
	clearEnv(t)
	_, err := Load(writeFile(t, minimalYAML+"sharding:\n  two_phase_commit: yes please\n"), nil)
	if want := `sharding.two_phase_commit: expected true or false, got "yes please"`; !slices.Contains(problems(err), want) {
		t.Errorf("want %q in:\n%v", want, err)
	}
}

func TestRedactDSN(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"postgres://u:s3cret@db:5432/cat?sslmode=disable", "postgres://u:******@db:5432/cat?sslmode=disable"},
		{"postgresql://u@db/cat?password=s3cret&sslmode=require", "postgresql://u@db/cat?password=******&sslmode=require"},
		{"postgres://db/cat", "postgres://db/cat"},
		{"host=db user=u password=s3cret dbname=cat", "host=db user=u password=****** dbname=cat"},
		{"host=db password = 's3 c\\'ret' dbname=cat", "host=db password=****** dbname=cat"},
		{"password=s3cret", "password=******"},
		{"host=db password='s3cret", "******"}, // unterminated: hidden whole
		{"s3cret", "******"},
	} {
		got := redactDSN(tt.in)
		if got != tt.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "s3") {
			t.Errorf("redactDSN(%q) shows the password: %q", tt.in, got)
		}
	}
}

func TestRedactedCatalog(t *testing.T) {
	c := validConfig()
	c.Catalog.DSN = "postgres://shardgate:s3cret@db:5432/cat"
	out, err := yaml.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "shardgate:******@db:5432/cat") {
		t.Errorf("redacted output:\n%s", out)
	}
	if c.Catalog.DSN != "postgres://shardgate:s3cret@db:5432/cat" {
		t.Error("Redacted changed the original")
	}
}
