package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runner executes the server binaries, as the postgres OS user when we are
// root because initdb, pg_ctl and postgres refuse to run as root.
type runner struct {
	binDir string
	cred   *syscall.Credential // nil: run as ourselves
	env    []string
	log    *logSink
}

func newRunner(binDir string, log *logSink) (*runner, error) {
	r := &runner{binDir: binDir, log: log, env: serverEnv("")}
	if os.Geteuid() != 0 {
		return r, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("cluster: running as root needs a postgres OS user to run the server as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("cluster: postgres user has non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	r.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	r.env = serverEnv(u.HomeDir)
	return r, nil
}

// own hands path to the user the server runs as; a no-op when not root.
func (r *runner) own(path string) error {
	if r.cred == nil {
		return nil
	}
	return os.Chown(path, int(r.cred.Uid), int(r.cred.Gid))
}

// run executes a server binary in dir and returns its error with the
// command's output attached, since that output is usually the only clue.
func (r *runner) run(ctx context.Context, prefix, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(r.binDir, name), args...)
	cmd.Dir = dir
	cmd.Env = r.env
	if r.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	}
	var out bytes.Buffer
	w := r.log.writer(prefix)
	cmd.Stdout = teeWriter{&out, w}
	cmd.Stderr = cmd.Stdout
	// pg_ctl start leaves a postmaster behind; should it ever inherit our
	// pipe, WaitDelay keeps Wait from blocking on it forever.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	w.Flush()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// serverEnv drops PG* variables, which would silently redirect libpq-based
// tools such as pg_basebackup, and pins messages to English so that log
// checks (bind failures) work under any locale. A non-empty home replaces
// HOME, so that libpq running as postgres does not look for root's files.
func serverEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG") ||
			(home != "" && strings.HasPrefix(kv, "HOME=")) {
			continue
		}
		env = append(env, kv)
	}
	if home != "" {
		env = append(env, "HOME="+home)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// readPostmasterPID returns the pid recorded in dataDir/postmaster.pid, or
// 0 when there is none.
func readPostmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("cluster: bad postmaster.pid in %s", dataDir)
	}
	return pid, nil
}

// alive reports whether pid runs. Zombies count as gone: the postmaster is
// not our child and the container's init may never reap it.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		// No procfs (not Linux) or the process just went away; trust kill.
		return syscall.Kill(pid, 0) == nil
	}
	_, state, _ := parseStat(stat)
	return state != "Z" && state != "X"
}

// parseStat extracts ppid and state from /proc/PID/stat, whose command
// field may itself contain spaces and parentheses.
func parseStat(stat []byte) (ppid int, state string, ok bool) {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// childrenOf lists the direct children of pid. It is best effort (Linux
// only): Kill uses it to wait for backends that outlive their postmaster,
// because a restart fails while they still hold the shared memory.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if ppid, _, ok := parseStat(stat); ok && ppid == pid {
			kids = append(kids, child)
		}
	}
	return kids
}

// killAndWait sends SIGKILL to pid and waits until it and the children it
// had are gone.
func killAndWait(pid int, timeout time.Duration) error {
	kids := childrenOf(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cluster: kill %d: %w", pid, err)
	}
	deadline := time.Now().Add(timeout)
	for _, p := range append([]int{pid}, kids...) {
		for alive(p) {
			if time.Now().After(deadline) {
				return fmt.Errorf("cluster: process %d still alive %v after SIGKILL of postmaster %d", p, timeout, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// looksLikePostgres guards against killing an unrelated process that reused
// the pid of a stale postmaster.pid.
func looksLikePostgres(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return alive(pid) // no procfs: fall back to trusting the pid file
	}
	return bytes.Contains(cmdline, []byte("postgres"))
}

// checkTraversable fails early, with a hint, when the postgres user could
// not reach dir: initdb's own error for that is obscure.
func (r *runner) checkTraversable(dir string) error {
	if r.cred == nil {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			okOther := mode&0o001 != 0
			okOwner := st.Uid == r.cred.Uid && mode&0o100 != 0
			okGroup := st.Gid == r.cred.Gid && mode&0o010 != 0
			if !okOther && !okOwner && !okGroup {
				return fmt.Errorf("cluster: the postgres OS user cannot traverse %s (mode %v); chmod o+x it or use a Dir elsewhere", d, mode)
			}
		}
		if parent := filepath.Dir(d); parent == d {
			return nil
		}
	}
}
