package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CatalogConfig says where the shard map's catalog database is. Without a
// DSN, the map is the file's sharding section, static, and directory
// placements live in the proxy's memory.
type CatalogConfig struct {
	// DSN is the catalog database's libpq connection string, URL or
	// key=value. It may hold a password, so it is never logged and has
	// no flag (set it in the file or with SHARDGATE_CATALOG_DSN).
	DSN string `mapstructure:"dsn" yaml:"dsn"`
	// PollInterval is how often the map's version is read, as a backstop
	// for the notifications that normally bring changes at once.
	PollInterval time.Duration `mapstructure:"poll_interval" yaml:"poll_interval"`
	// DirectoryCache is how many directory entries each proxy keeps in
	// memory.
	DirectoryCache int `mapstructure:"directory_cache" yaml:"directory_cache"`
}

// minCatalogPoll bounds catalog.poll_interval: every proxy polls, and the
// notifications, not the poll, are what make changes quick.
const minCatalogPoll = 10 * time.Millisecond

func (c *Config) validateCatalog(v *validator) {
	cat := c.Catalog
	if cat.DSN != "" {
		// pgxpool's parser, as the catalog uses it; its message is not
		// shown because it may quote the password.
		if _, err := pgxpool.ParseConfig(cat.DSN); err != nil {
			v.add("catalog.dsn", `expected a PostgreSQL connection string such as postgres://user@host:5432/shardgate_catalog or "host=... dbname=..." (value not shown)`)
		}
	}
	if cat.PollInterval < minCatalogPoll {
		v.add("catalog.poll_interval", "expected a duration >= %s such as 1s, got %s", minCatalogPoll, cat.PollInterval)
	}
	v.atLeast("catalog.directory_cache", cat.DirectoryCache, 1)
	if c.Sharding.TwoPhaseCommit && cat.DSN == "" {
		v.add("sharding.two_phase_commit", "two_phase_commit needs catalog.dsn: commit decisions are recorded in the catalog")
	}
}

// redactDSN hides the password of a connection string, in either form,
// keeping the rest readable. What it cannot parse it hides whole.
func redactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return redactedSecret
		}
		if _, set := u.User.Password(); set {
			u.User = url.UserPassword(u.User.Username(), redactedSecret)
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", redactedSecret)
			u.RawQuery = q.Encode()
		}
		// url escapes the stars; unescaped, they read as in check-config's
		// other secrets.
		return strings.ReplaceAll(u.String(), url.QueryEscape(redactedSecret), redactedSecret)
	}
	var b strings.Builder
	rest := dsn
	for {
		rest = strings.TrimLeft(rest, " \t\n\r")
		if rest == "" {
			return b.String()
		}
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			return redactedSecret
		}
		key = strings.TrimSpace(key)
		after = strings.TrimLeft(after, " \t\n\r")
		n, ok := dsnValueLen(after)
		if !ok {
			return redactedSecret
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if key == "password" {
			b.WriteString("password=" + redactedSecret)
		} else {
			b.WriteString(key + "=" + after[:n])
		}
		rest = after[n:]
	}
}

// dsnValueLen measures a key=value DSN value at the start of s, quoted or
// not, with libpq's backslash escapes.
func dsnValueLen(s string) (int, bool) {
	if strings.HasPrefix(s, "'") {
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '\'':
				return i + 1, true
			}
		}
		return 0, false // unterminated
	}
	i := 0
	for i < len(s) && !strings.ContainsRune(" \t\n\r", rune(s[i])) {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	return min(i, len(s)), true
}
