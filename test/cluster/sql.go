package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Conn opens a connection to the host as the superuser postgres over TCP,
// database postgres. The caller closes it.
func (h *Host) Conn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := h.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to %s: %w", h.Name, err)
	}
	return conn, nil
}

func (h *Host) connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, h.DSN("postgres", "", "postgres")+" connect_timeout=10")
}

// Exec runs sql as the superuser postgres in database postgres on a fresh
// connection. Without args, sql may hold several statements.
func (h *Host) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := h.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("cluster: %s: %w", h.Name, err)
	}
	return nil
}

// QueryString runs a query as the superuser postgres in database postgres
// and returns the first column of the first row in PostgreSQL's text form
// ("t" for true, "0/3000148" for an LSN), or "" for NULL. It fails with
// pgx.ErrNoRows when there is no row.
func (h *Host) QueryString(ctx context.Context, sql string, args ...any) (string, error) {
	conn, err := h.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	// The simple protocol returns every type as text, so any column scans
	// into a string without per-type codecs.
	var s *string
	qargs := append([]any{pgx.QueryExecModeSimpleProtocol}, args...)
	if err := conn.QueryRow(ctx, sql, qargs...).Scan(&s); err != nil {
		return "", fmt.Errorf("cluster: %s: %w", h.Name, err)
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// InRecovery reports pg_is_in_recovery(): true on a replica.
func (h *Host) InRecovery(ctx context.Context) (bool, error) {
	v, err := h.QueryString(ctx, "SELECT pg_is_in_recovery()")
	return v == "t", err
}

// CurrentLSN returns the primary's WAL insert position. Unlike the write
// position it already covers commits acknowledged under
// synchronous_commit=off, so WaitReplayed on it makes them visible.
func (h *Host) CurrentLSN(ctx context.Context) (string, error) {
	return h.QueryString(ctx, "SELECT pg_current_wal_insert_lsn()")
}

// PauseReplay pauses WAL replay on a replica and waits until the pause is in
// effect, so that nothing written on the primary afterwards becomes visible
// until ResumeReplay.
func (h *Host) PauseReplay(ctx context.Context) error {
	if err := h.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		return err
	}
	return poll(ctx, 10*time.Millisecond, func() (bool, error) {
		state, err := h.QueryString(ctx, "SELECT pg_get_wal_replay_pause_state()")
		return state == "paused", err
	}, func() error { return fmt.Errorf("cluster: replay on %s did not pause", h.Name) })
}

// ResumeReplay resumes WAL replay on a replica.
func (h *Host) ResumeReplay(ctx context.Context) error {
	return h.Exec(ctx, "SELECT pg_wal_replay_resume()")
}

// Promote turns a replica into a primary and waits until it accepts writes.
func (h *Host) Promote(ctx context.Context) error {
	ok, err := h.QueryString(ctx, "SELECT pg_promote(true, 60)")
	if err != nil {
		return err
	}
	if ok != "t" {
		return fmt.Errorf("cluster: %s did not finish promotion within 60s", h.Name)
	}
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		rec, err := h.InRecovery(ctx)
		return !rec, err
	}, func() error { return fmt.Errorf("cluster: %s still in recovery after promotion", h.Name) })
}

// WaitReplayed waits until the replica has replayed WAL up to lsn, e.g. a
// value from the primary's CurrentLSN.
func (h *Host) WaitReplayed(ctx context.Context, lsn string) error {
	return poll(ctx, 10*time.Millisecond, func() (bool, error) {
		v, err := h.QueryString(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn)
		return v == "t", err
	}, func() error { return fmt.Errorf("cluster: %s did not replay up to %s", h.Name, lsn) })
}

// waitStreaming waits until a fresh replica's WAL receiver streams from its
// primary.
func (h *Host) waitStreaming(ctx context.Context) error {
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		v, err := h.QueryString(ctx, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), '')")
		return v == "streaming", err
	}, func() error { return fmt.Errorf("cluster: %s is not streaming from its primary", h.Name) })
}

// createRoles creates Options.Users and Options.Databases on a primary.
func (h *Host) createRoles(ctx context.Context, users []User, dbs []Database) error {
	for _, u := range users {
		exists, err := h.QueryString(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", u.Name)
		if err != nil {
			return err
		}
		verb := "CREATE"
		if exists != "0" {
			// The bootstrap superuser postgres always exists; listing it
			// in Users just gives it a password.
			verb = "ALTER"
		}
		sql := fmt.Sprintf("%s ROLE %s LOGIN PASSWORD %s", verb, quoteIdent(u.Name), quoteLiteral(u.Password))
		if u.Superuser {
			sql += " SUPERUSER"
		}
		if err := h.Exec(ctx, sql); err != nil {
			return err
		}
	}
	for _, d := range dbs {
		exists, err := h.QueryString(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", d.Name)
		if err != nil {
			return err
		}
		if exists != "0" {
			if d.Owner != "" {
				if err := h.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s OWNER TO %s", quoteIdent(d.Name), quoteIdent(d.Owner))); err != nil {
					return err
				}
			}
			continue
		}
		sql := "CREATE DATABASE " + quoteIdent(d.Name)
		if d.Owner != "" {
			sql += " OWNER " + quoteIdent(d.Owner)
		}
		if err := h.Exec(ctx, sql); err != nil {
			return err
		}
	}
	return nil
}

// poll calls check every interval until it reports done, fails, or ctx
// ends; on timeout the error from timeoutErr explains what was awaited.
func poll(ctx context.Context, interval time.Duration, check func() (bool, error), timeoutErr func() error) error {
	var last error
	for {
		done, err := check()
		if done && err == nil {
			return nil
		}
		if err != nil && ctx.Err() == nil && !retryable(err) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return errors.Join(timeoutErr(), ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}

// retryable reports errors poll should ride out: connection failures while
// a server starts, restarts or finishes promotion.
func retryable(err error) bool {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		// 57P03 cannot_connect_now: the server is starting up.
		return pgErr.SQLState() == "57P03"
	}
	return true
}
