package auth

import "github.com/jackc/pgx/v5/pgproto3"

// SQLSTATE codes that Authenticate reports.
const (
	// CodeInvalidPassword is invalid_password, used for every failed
	// credential check, whatever the underlying reason.
	CodeInvalidPassword = "28P01"
	// CodeProtocolViolation is protocol_violation, used when the client's
	// messages are malformed or break the exchange's rules.
	CodeProtocolViolation = "08P01"
	// CodeFeatureNotSupported is feature_not_supported, used when the client
	// asks for a SCRAM feature Postgres does not implement either.
	CodeFeatureNotSupported = "0A000"
	// CodeConnectionFailure is connection_failure, used when the Conn itself
	// fails (the client went away), so callers can skip replying.
	CodeConnectionFailure = "08006"
)

// Error is an authentication failure as it should be reported to the client.
//
// Message is safe to send to an unauthenticated client; Err carries the
// underlying reason (a misconfigured credential, an I/O error) for the
// server's log and must not be shown to the client.
type Error struct {
	// Code is the SQLSTATE, one of the Code* constants.
	Code string
	// Message is the client-facing text, worded as Postgres words it.
	Message string
	// Err is the internal cause, if any.
	Err error
}

// Error returns the message followed by the internal cause, if any. It is
// meant for logs; use Message or Response for what the client sees.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// SQLState returns the SQLSTATE code, matching the method pgconn.PgError and
// other drivers' error types expose.
func (e *Error) SQLState() string { return e.Code }

// Response returns the FATAL ErrorResponse a server sends for this failure.
// Only Code and Message are included, never the internal cause.
func (e *Error) Response() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{
		Severity:            "FATAL",
		SeverityUnlocalized: "FATAL",
		Code:                e.Code,
		Message:             e.Message,
	}
}

// authFailed is the one failure every wrong, missing or unverifiable
// credential turns into, so the client cannot tell the cases apart.
func authFailed(user string, cause error) *Error {
	return &Error{
		Code:    CodeInvalidPassword,
		Message: `password authentication failed for user "` + user + `"`,
		Err:     cause,
	}
}

func protocolViolation(msg string) *Error {
	return &Error{Code: CodeProtocolViolation, Message: msg}
}

func notSupported(msg string) *Error {
	return &Error{Code: CodeFeatureNotSupported, Message: msg}
}
