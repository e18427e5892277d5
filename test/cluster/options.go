package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoPostgres reports that no PostgreSQL server binaries could be found.
// ForTest turns it into a skip; callers of Start can test for it with
// errors.Is.
var ErrNoPostgres = errors.New("cluster: no PostgreSQL server binaries found")

// maxReplicas keeps fixed port layouts (BasePort + shard*10 + host) from
// overlapping the next shard.
const maxReplicas = 9

// Options describes the cluster Start builds. The zero value is one shard
// with no replicas on free ports in a temporary directory.
type Options struct {
	// Shards is the number of shards; 0 means 1.
	Shards int
	// Replicas is the number of streaming replicas per shard (at most 9).
	Replicas int
	// Dir is the base directory. Empty means a new temporary directory that
	// Stop removes. A given Dir that holds a previous cluster is wiped.
	Dir string
	// BinDir holds initdb, pg_ctl and friends. Empty means autodetect.
	BinDir string
	// BasePort, when non-zero, fixes ports: shard i host j (0 = primary)
	// listens on BasePort + i*10 + j. Zero picks free loopback ports.
	BasePort int
	// Users are login roles created on every primary before replicas are
	// cloned. They authenticate with scram-sha-256 over TCP; the built-in
	// superuser postgres is trusted on 127.0.0.1 whatever its password.
	Users []User
	// Databases are created on every primary, after Users.
	Databases []Database
	// Log receives tool output and the servers' logs, prefixed with the
	// host name. Nil discards them; the log files stay next to each data
	// directory either way.
	Log io.Writer
	// ExtraConf lines are appended to every host's postgresql.conf.
	ExtraConf []string
}

// User is a login role to create on every primary.
type User struct {
	// Name is the role name.
	Name string
	// Password is stored as a SCRAM verifier.
	Password string
	// Superuser grants SUPERUSER.
	Superuser bool
}

// Database is a database to create on every primary.
type Database struct {
	// Name is the database name.
	Name string
	// Owner is the owning role; empty leaves it to postgres.
	Owner string
}

func (o *Options) validate() error {
	if o.Shards < 0 || o.Replicas < 0 {
		return fmt.Errorf("cluster: negative Shards (%d) or Replicas (%d)", o.Shards, o.Replicas)
	}
	if o.Shards == 0 {
		o.Shards = 1
	}
	if o.Replicas > maxReplicas {
		return fmt.Errorf("cluster: at most %d replicas per shard, got %d", maxReplicas, o.Replicas)
	}
	if o.BasePort != 0 {
		last := o.BasePort + (o.Shards-1)*10 + o.Replicas
		if o.BasePort < 1024 || last > 65535 {
			return fmt.Errorf("cluster: BasePort %d puts ports outside 1024-65535", o.BasePort)
		}
	}
	for _, u := range o.Users {
		if u.Name == "" {
			return errors.New("cluster: user with empty name")
		}
	}
	for _, d := range o.Databases {
		if d.Name == "" {
			return errors.New("cluster: database with empty name")
		}
	}
	return nil
}

// FindBinDir returns the directory holding the PostgreSQL server binaries:
// explicit if non-empty, else the highest version under
// /usr/lib/postgresql/*/bin (Debian's layout), else the directory of pg_ctl
// on PATH. The error wraps ErrNoPostgres when nothing is found.
func FindBinDir(explicit string) (string, error) {
	if explicit != "" {
		if !hasServerBinaries(explicit) {
			return "", fmt.Errorf("%w: %s lacks initdb, pg_ctl or postgres", ErrNoPostgres, explicit)
		}
		return explicit, nil
	}
	if dir := debianBinDir(); dir != "" {
		return dir, nil
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dir := filepath.Dir(p)
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w: looked in /usr/lib/postgresql/*/bin and PATH", ErrNoPostgres)
}

func debianBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestVer := "", -1.0
	for _, d := range dirs {
		// Versions are "15" or, before 10, "9.6": a float orders both.
		ver, err := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		if err != nil || ver <= bestVer || !hasServerBinaries(d) {
			continue
		}
		best, bestVer = d, ver
	}
	return best
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres", "pg_basebackup"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// quoteIdent and quoteLiteral exist because CREATE ROLE and CREATE DATABASE
// take no bind parameters.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
