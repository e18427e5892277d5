package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Proc is a child process a benchmark started and stops itself: a proxy
// under test, or one run of a tool such as `shardgate rebalance move`.
type Proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// ProcOptions are StartProc's optional settings; the zero value starts
// the child as ourselves with CleanEnv's environment.
type ProcOptions struct {
	// Env is the child's environment; nil is CleanEnv(), never ours
	// unfiltered, for the reasons given there.
	Env []string
	// Cred, when non-nil, runs the child as another user (pgbouncer
	// refuses to run as root).
	Cred *syscall.Credential
	// Tee, when non-nil, receives the child's output too, for callers
	// that parse it. It is written by one goroutine at a time, so a
	// strings.Builder will do; read it once Done is closed.
	Tee io.Writer
}

// StartProc starts bin with its output in logPath; name is what messages
// call it. The child gets its own process group so that the terminal's
// Ctrl-C reaches only the benchmark, which then stops the child itself,
// after its clients, in a known order.
func StartProc(name, logPath string, opt ProcOptions, bin string, args ...string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if opt.Tee != nil {
		// exec serializes writes when Stdout and Stderr are the same
		// comparable writer, so Tee is never written by two goroutines.
		w := io.MultiWriter(f, opt.Tee)
		cmd.Stdout, cmd.Stderr = w, w
	}
	cmd.Env = opt.Env
	if cmd.Env == nil {
		cmd.Env = CleanEnv()
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: opt.Cred}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	p := &Proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	// The waiter ends when the process does (and, with Tee, once its
	// output is all copied); it closes the log.
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id, for /proc CPU readings.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited and its output is written.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err waits for the child to exit and says how it ended, as
// exec.Cmd.Wait does: nil for exit status 0.
func (p *Proc) Err() error {
	<-p.done
	return p.waitErr
}

func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitStatus describes how an exited child ended: "exit status 2",
// "signal: killed"...
func (p *Proc) exitStatus() string {
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

// Stop asks the child to terminate with SIGTERM and kills it after
// timeout. Both proxies treat SIGTERM as "shut down now"; the rebalance
// tool stops its move. Stop on a nil or exited Proc does nothing.
func (p *Proc) Stop(timeout time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// LogTail returns the last n lines of the child's log, for error
// messages.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitLogin polls until a real login through the child succeeds and a
// query runs: an open port alone would not prove that authentication and
// the route to PostgreSQL work. It fails early if the child exits.
func (p *Proc) WaitLogin(ctx context.Context, dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("bench: %s exited during startup (%s); its log ends with:\n%s", p.name, p.exitStatus(), p.LogTail(20))
		}
		last = tryLogin(ctx, dsn)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("bench: %s not accepting logins after %v: %v; its log ends with:\n%s", p.name, timeout, last, p.LogTail(20))
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tryLogin(ctx context.Context, dsn string) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(cctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol)
	return err
}

// FreePort returns a loopback port that was free a moment ago. The child
// binds it right after, so a clash is unlikely; WaitLogin would report it.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: probe for a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// CleanEnv is our environment, plus extra, for a child: without PG*
// variables, which would silently redirect pgbench, libpq and the
// rebalance tool (it reads PGUSER, PGPASSWORD and PGDATABASE); without
// SHARDGATE_* ones, which override settings of the config a benchmark
// wrote for the proxy; and with messages pinned to English so that error
// lines parse.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG") || strings.HasPrefix(kv, "SHARDGATE_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C", "LANG=C")
	return append(env, extra...)
}
