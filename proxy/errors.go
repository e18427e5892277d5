package proxy

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardgate/shardgate/proxy/auth"
)

// Error is a failure the proxy reports to a client itself, with the
// SQLSTATE a PostgreSQL client expects.
type Error struct {
	Code    string
	Message string
	Hint    string
	// Fatal errors end the client's session.
	Fatal bool
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// SQLState returns the SQLSTATE code.
func (e *Error) SQLState() string { return e.Code }

// sqlStater is implemented by every error that knows its SQLSTATE (ours,
// the pool's, the auth package's).
type sqlStater interface {
	SQLState() string
}

// errorResponse turns any error into the ErrorResponse a client gets. A
// server's own error keeps its fields; our errors carry their code; anything
// else is an internal error, which should not happen.
func errorResponse(err error, fatal bool) *pgproto3.ErrorResponse {
	sev := "ERROR"
	if fatal {
		sev = "FATAL"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !isLoginError(pgErr) {
		return &pgproto3.ErrorResponse{
			Severity: sev, SeverityUnlocalized: sev, Code: pgErr.Code,
			Message: pgErr.Message, Detail: pgErr.Detail, Hint: pgErr.Hint,
		}
	}
	msg := &pgproto3.ErrorResponse{Severity: sev, SeverityUnlocalized: sev, Code: "XX000", Message: err.Error()}
	var pe *Error
	if errors.As(err, &pe) {
		msg.Code, msg.Message, msg.Hint = pe.Code, pe.Error(), pe.Hint
		if pe.Fatal {
			msg.Severity, msg.SeverityUnlocalized = "FATAL", "FATAL"
		}
		return msg
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		// Only the message: the cause may say more about the user than a
		// client that failed to log in should learn.
		msg.Code, msg.Message = ae.Code, ae.Message
		return msg
	}
	var ss sqlStater
	if errors.As(err, &ss) {
		msg.Code = ss.SQLState()
	}
	if errors.As(err, &pgErr) {
		// The server refused shardgate's own login: a configuration
		// problem of the proxy, not the client's credentials.
		msg.Code = "08006"
		msg.Message = fmt.Sprintf("shardgate cannot log in to the server: %s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		msg.Hint = "check the user's server_user and server_password in the shardgate config"
	}
	return msg
}

// isLoginError tells errors about shardgate's own server credentials,
// which must not be passed to the client as if they were the client's.
func isLoginError(e *pgconn.PgError) bool {
	return len(e.Code) == 5 && e.Code[:2] == "28"
}
