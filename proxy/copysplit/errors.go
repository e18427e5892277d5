package copysplit

import "fmt"

// SQLSTATE codes the package reports.
const (
	// codeBadFormat is bad_copy_file_format, what the server reports for
	// every malformed COPY data stream.
	codeBadFormat = "22P04"
	// codeSyntax is syntax_error, used by the server for repeated and
	// unknown COPY options.
	codeSyntax = "42601"
	// codeInvalidParam is invalid_parameter_value, for option values the
	// server refuses.
	codeInvalidParam = "22023"
	// codeUnsupported is feature_not_supported: options the server refuses
	// in a format, and COPY statements a sharding proxy cannot split.
	codeUnsupported = "0A000"
	// codeUndefinedColumn and codeDuplicateColumn are the server's codes
	// for a bad COPY column list.
	codeUndefinedColumn = "42703"
	codeDuplicateColumn = "42701"
)

// Error is a failure to parse COPY options or COPY data, with the
// SQLSTATE and, as far as possible, the message the server would have
// given. Data errors carry the line (or, in binary format, the tuple)
// where they happened, counted from 1 with a header line as line 1, as
// in the server's "COPY t, line 3" context.
type Error struct {
	// Code is the SQLSTATE.
	Code string
	// Message is the server's message for the same failure.
	Message string
	// Hint is the server's hint, if it gives one.
	Hint string
	// Line is the 1-based line or tuple number; 0 for option errors.
	Line int64
}

// Error returns the message alone, as the server words it, so that a
// client sees the text it would have seen without the proxy.
func (e *Error) Error() string { return e.Message }

// SQLState returns the SQLSTATE for the client.
func (e *Error) SQLState() string { return e.Code }

func optionError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// dataError reports malformed COPY data at line.
func dataError(line int64, format string, args ...any) *Error {
	return &Error{Code: codeBadFormat, Message: fmt.Sprintf(format, args...), Line: line}
}

// The server words newline errors differently in text and CSV format; the
// hints tell the user how to write the character instead.
func (s *Splitter) errCR() *Error {
	if s.csv {
		return &Error{Code: codeBadFormat, Message: "unquoted carriage return found in data",
			Hint: "Use quoted CSV field to represent carriage return.", Line: s.line + 1}
	}
	return &Error{Code: codeBadFormat, Message: "literal carriage return found in data",
		Hint: `Use "\r" to represent carriage return.`, Line: s.line + 1}
}

func (s *Splitter) errNL() *Error {
	if s.csv {
		return &Error{Code: codeBadFormat, Message: "unquoted newline found in data",
			Hint: "Use quoted CSV field to represent newline.", Line: s.line + 1}
	}
	return &Error{Code: codeBadFormat, Message: "literal newline found in data",
		Hint: `Use "\n" to represent newline.`, Line: s.line + 1}
}

func (s *Splitter) errMarkerCorrupt() *Error {
	return dataError(s.line+1, "end-of-copy marker corrupt")
}

func (s *Splitter) errMarkerStyle() *Error {
	return dataError(s.line+1, "end-of-copy marker does not match previous newline style")
}

// errMissing reports a row at line with only have fields, too few to
// reach the key. Like the server it names the first missing column, when
// the column list is known.
func (s *Splitter) errMissing(line int64, have int) *Error {
	name := s.key.Name
	if have < len(s.key.Columns) {
		name = s.key.Columns[have]
	}
	return dataError(line, `missing data for column "%s"`, name)
}

// errDefault reports a key given as the DEFAULT marker: the row's shard
// would depend on a default only a server can evaluate.
func (s *Splitter) errDefault() *Error {
	return &Error{Code: codeUnsupported, Line: s.line,
		Message: fmt.Sprintf(`cannot route a COPY row whose sharding key column "%s" is given as DEFAULT`, s.key.Name)}
}
