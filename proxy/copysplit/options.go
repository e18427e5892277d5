package copysplit

import "strings"

// Format is a COPY data format.
type Format uint8

// The COPY formats.
const (
	Text Format = iota
	CSV
	Binary
)

// String returns the format's name in COPY's FORMAT option.
func (f Format) String() string {
	switch f {
	case Text:
		return "text"
	case CSV:
		return "csv"
	case Binary:
		return "binary"
	}
	return "unknown"
}

// Options are the COPY options that decide how a data stream splits into
// rows and how the key field decodes, with PostgreSQL's defaults already
// applied: build them with DefaultOptions or OptionsFromStmt.
type Options struct {
	// Format is the data format.
	Format Format
	// Delimiter separates fields (text and CSV).
	Delimiter byte
	// Null is the NULL marker (text and CSV). In text format it is
	// compared with the field before de-escaping; in CSV only an unquoted
	// field equal to it is NULL.
	Null string
	// Default is the DEFAULT marker (PostgreSQL 16), meaningful when
	// HasDefault is set. A key given as DEFAULT cannot be routed.
	Default    string
	HasDefault bool
	// Quote and Escape are the CSV quote and escape characters.
	Quote  byte
	Escape byte
	// Header says the first line is a header (text and CSV): it is not a
	// row, and every shard must receive it.
	Header bool
	// ForceNotNull and ForceNull name CSV columns given FORCE_NOT_NULL or
	// FORCE_NULL; the All forms stand for "*". Only the key column's
	// entries matter here.
	ForceNotNull    []string
	ForceNotNullAll bool
	ForceNull       []string
	ForceNullAll    bool
}

// DefaultOptions returns the options COPY uses for format f when no other
// option is given.
func DefaultOptions(f Format) Options {
	switch f {
	case CSV:
		return Options{Format: CSV, Delimiter: ',', Quote: '"', Escape: '"'}
	case Binary:
		return Options{Format: Binary}
	default:
		return Options{Format: Text, Delimiter: '\t', Null: `\N`}
	}
}

// textDelimiterForbidden are the bytes the server refuses as a text
// delimiter: backslash sequences would read them as escapes.
const textDelimiterForbidden = "\\.abcdefghijklmnopqrstuvwxyz0123456789"

// check refuses options the server would refuse, with its messages. The
// splitter relies on some of these rules (a delimiter that cannot be a
// newline, a quote that differs from the delimiter), and options built by
// hand do not go through OptionsFromStmt.
func (o *Options) check() error {
	switch o.Format {
	case Binary:
		if o.Header {
			return optionError(codeUnsupported, "cannot specify HEADER in BINARY mode")
		}
		return nil
	case Text, CSV:
	default:
		return optionError(codeInvalidParam, `COPY format "%s" not recognized`, o.Format)
	}
	d := o.Delimiter
	if d == 0 {
		return optionError(codeUnsupported, "COPY delimiter must be a single one-byte character")
	}
	if d == '\r' || d == '\n' {
		return optionError(codeInvalidParam, "COPY delimiter cannot be newline or carriage return")
	}
	if strings.ContainsAny(o.Null, "\r\n") {
		return optionError(codeInvalidParam, "COPY null representation cannot use newline or carriage return")
	}
	if o.HasDefault && strings.ContainsAny(o.Default, "\r\n") {
		return optionError(codeInvalidParam, "COPY default representation cannot use newline or carriage return")
	}
	if o.Format == Text {
		if strings.IndexByte(textDelimiterForbidden, d) >= 0 {
			return optionError(codeInvalidParam, `COPY delimiter cannot be "%s"`, string(d))
		}
		if o.Quote != 0 || o.Escape != 0 {
			return optionError(codeUnsupported, "COPY quote available only in CSV mode")
		}
		if len(o.ForceNotNull) > 0 || o.ForceNotNullAll || len(o.ForceNull) > 0 || o.ForceNullAll {
			return optionError(codeUnsupported, "COPY force not null available only in CSV mode")
		}
	} else {
		if o.Quote == 0 || o.Escape == 0 {
			return optionError(codeUnsupported, "COPY quote must be a single one-byte character")
		}
		if d == o.Quote {
			return optionError(codeInvalidParam, "COPY delimiter and quote must be different")
		}
		if strings.IndexByte(o.Null, o.Quote) >= 0 {
			return optionError(codeUnsupported, "CSV quote character must not appear in the NULL specification")
		}
		if o.HasDefault && strings.IndexByte(o.Default, o.Quote) >= 0 {
			return optionError(codeUnsupported, "CSV quote character must not appear in the DEFAULT specification")
		}
	}
	if strings.IndexByte(o.Null, d) >= 0 {
		return optionError(codeUnsupported, "COPY delimiter must not appear in the NULL specification")
	}
	if o.HasDefault {
		if strings.IndexByte(o.Default, d) >= 0 {
			return optionError(codeUnsupported, "COPY delimiter must not appear in the DEFAULT specification")
		}
		if o.Default == o.Null {
			return optionError(codeUnsupported, "NULL specification and DEFAULT specification cannot be the same")
		}
	}
	return nil
}

// forced reports whether a FORCE_NOT_NULL or FORCE_NULL column list
// covers column.
func forced(all bool, list []string, column string) bool {
	return all || contains(list, column)
}
