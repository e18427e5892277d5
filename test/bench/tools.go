package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
)

// FindPgbench prefers the pgbench next to the server binaries, so that
// client and server come from the same release, then PATH.
func FindPgbench(serverBinDir string) (string, error) {
	if serverBinDir != "" {
		p := filepath.Join(serverBinDir, "pgbench")
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	return "", errors.New("bench: pgbench not found next to the PostgreSQL server binaries or on PATH; " +
		"install it with: apt-get install postgresql-client (or postgresql-15, which ships it)")
}

// pgbouncerPaths are where Debian and source installs put pgbouncer; /usr/sbin
// is missing from many non-root PATHs.
var pgbouncerPaths = []string{"/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer", "/usr/bin/pgbouncer"}

// FindPgBouncer returns pgbouncer's path or "".
func FindPgBouncer() string {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p
	}
	for _, p := range pgbouncerPaths {
		if isExecutable(p) {
			return p
		}
	}
	return ""
}

// EnsurePgBouncer finds pgbouncer, installing Debian's package when it is
// missing and we are root with apt-get. It returns "" and an explanation
// (what to install) when the benchmark has to go on without it. On a host
// running systemd the package also enables its own service, on port 6432;
// in containers policy-rc.d usually stops that.
func EnsurePgBouncer(ctx context.Context, log io.Writer) (path, note string) {
	if p := FindPgBouncer(); p != "" {
		return p, ""
	}
	const hint = "pgbouncer is not installed, so its columns are left out; install it (Debian/Ubuntu: apt-get install pgbouncer) to compare against it"
	apt, err := exec.LookPath("apt-get")
	if os.Geteuid() != 0 || err != nil {
		return "", hint
	}
	fmt.Fprintln(log, "benchrun: pgbouncer missing; installing it with apt-get")
	// Another apt-get may hold dpkg's lock (unattended upgrades, a
	// colleague's install): wait for it rather than give up at once.
	lock := []string{"-o", "DPkg::Lock::Timeout=300"}
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "pgbouncer"}} {
		cmd := exec.CommandContext(ctx, apt, append(lock, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return "", fmt.Sprintf("installing pgbouncer (apt-get %s) failed: %v; %s", args[0], err, hint)
		}
	}
	if p := FindPgBouncer(); p != "" {
		return p, ""
	}
	return "", "apt-get installed pgbouncer but no binary was found; " + hint
}

var pgbouncerVersionRE = regexp.MustCompile(`(?i)pgbouncer\s+(\d+)\.(\d+)(?:\.(\d+))?`)

// ParsePgBouncerVersion reads `pgbouncer --version` output ("PgBouncer
// 1.18.0" then library lines) into major, minor, patch.
func ParsePgBouncerVersion(out string) (v [3]int, ok bool) {
	m := pgbouncerVersionRE.FindStringSubmatch(out)
	if m == nil {
		return v, false
	}
	for i := range 3 {
		if m[i+1] != "" {
			v[i], _ = strconv.Atoi(m[i+1])
		}
	}
	return v, true
}

// SupportsPreparedStatements reports whether a pgbouncer version can track
// protocol-level prepared statements in transaction mode
// (max_prepared_statements, added in 1.21).
func SupportsPreparedStatements(v [3]int) bool {
	return v[0] > 1 || (v[0] == 1 && v[1] >= 21)
}

// PgBouncerVersion runs `pgbouncer --version`.
func PgBouncerVersion(ctx context.Context, path string) ([3]int, string, error) {
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return [3]int{}, "", fmt.Errorf("bench: %s --version: %w", path, err)
	}
	v, ok := ParsePgBouncerVersion(string(out))
	if !ok {
		return v, "", fmt.Errorf("bench: cannot read a version from %q", out)
	}
	return v, fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]), nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
