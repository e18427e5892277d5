package merge

import "fmt"

// SQLSTATE codes the package reports.
const (
	// codeUnsupported is feature_not_supported: the proxy refuses a
	// statement it cannot merge correctly rather than answer wrongly.
	codeUnsupported = "0A000"
	// codeOutOfRange is numeric_value_out_of_range, as the server reports
	// an overflowing bigint sum.
	codeOutOfRange = "22003"
	// codeInternal is internal_error: a bad Spec or a value a shard should
	// never have sent. Either is a bug, not the client's fault.
	codeInternal = "XX000"
)

// Error is a failure to merge, with the SQLSTATE the client should get.
type Error struct {
	// Code is the SQLSTATE.
	Code string
	// Message says what could not be merged.
	Message string
	// Err is the cause, if any.
	Err error
}

// Error returns the message, with the cause if any.
func (e *Error) Error() string {
	if e.Err != nil {
		return "merge: " + e.Message + ": " + e.Err.Error()
	}
	return "merge: " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// SQLState returns the SQLSTATE for the client.
func (e *Error) SQLState() string { return e.Code }

// unsupported reports a construct the engine cannot merge exactly; the
// caller refuses the statement with 0A000.
func unsupported(format string, args ...any) *Error {
	return &Error{Code: codeUnsupported, Message: fmt.Sprintf(format, args...)}
}

// badSpec reports a Spec that does not fit the shard fields: a caller bug.
func badSpec(format string, args ...any) *Error {
	return &Error{Code: codeInternal, Message: "invalid spec: " + fmt.Sprintf(format, args...)}
}

// malformed reports a value a shard sent that does not decode as its type.
// The value is quoted (and so copied), since it is only a view.
func malformed(typ string, format int16, v []byte) *Error {
	const max = 64
	q := v
	if len(q) > max {
		q = q[:max]
	}
	f := "text"
	if format == binaryFormat {
		f = "binary"
	}
	return &Error{Code: codeInternal, Message: fmt.Sprintf("malformed %s %s value from shard: %q", f, typ, q)}
}

// overflow reports an integer sum out of its type's range.
func overflow(typ string) *Error {
	return &Error{Code: codeOutOfRange, Message: typ + " out of range"}
}
