package copysplit

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// OptionsFromStmt returns the options of a COPY ... FROM STDIN statement,
// with the server's defaults applied, or the error the server would give
// for them. Other forms of COPY (TO, FROM a file or program, a query) are
// refused with SQLSTATE 0A000: they have no client data to split.
//
// Options that do not change how the data splits or how the key reads
// (FREEZE, ON_ERROR, LOG_VERBOSITY, REJECT_LIMIT) are accepted and left
// to the shards. ENCODING is accepted unless it names an encoding that
// SafeEncoding refuses.
func OptionsFromStmt(stmt *pg_query.CopyStmt) (Options, error) {
	if stmt == nil || stmt.Relation == nil || !stmt.IsFrom || stmt.IsProgram || stmt.Filename != "" {
		return Options{}, optionError(codeUnsupported, "only COPY table FROM STDIN can be split across shards")
	}
	return parseOptions(stmt.Options)
}

// copyOptions are the option names COPY FROM knows, as the grammar
// lower-cases them, including old-style syntax (CSV, BINARY, FORCE NOT
// NULL) which the parser turns into the same DefElems.
var copyOptions = map[string]bool{
	"format": true, "freeze": true, "delimiter": true, "null": true, "default": true,
	"header": true, "quote": true, "escape": true, "force_quote": true,
	"force_not_null": true, "force_null": true, "convert_selectively": true,
	"encoding": true, "on_error": true, "log_verbosity": true, "reject_limit": true,
}

func parseOptions(nodes []*pg_query.Node) (Options, error) {
	var (
		o                             Options
		delim, null, quote, escape    *string
		seen                          = make(map[string]bool, len(nodes))
		forceNotNullSet, forceNullSet bool
	)
	for _, n := range nodes {
		d := n.GetDefElem()
		if d == nil {
			return Options{}, optionError(codeSyntax, "COPY option list holds something other than an option")
		}
		name := d.Defname
		if !copyOptions[name] {
			return Options{}, optionError(codeSyntax, `option "%s" not recognized`, name)
		}
		if seen[name] {
			return Options{}, optionError(codeSyntax, "conflicting or redundant options")
		}
		seen[name] = true
		var err error
		switch name {
		case "format":
			var v string
			if v, err = defString(d); err == nil {
				switch v {
				case "text":
					o.Format = Text
				case "csv":
					o.Format = CSV
				case "binary":
					o.Format = Binary
				default:
					err = optionError(codeInvalidParam, `COPY format "%s" not recognized`, v)
				}
			}
		case "delimiter":
			delim, err = defStringPtr(d)
		case "null":
			null, err = defStringPtr(d)
		case "quote":
			quote, err = defStringPtr(d)
		case "escape":
			escape, err = defStringPtr(d)
		case "default":
			o.Default, err = defString(d)
			o.HasDefault = true
		case "header":
			o.Header, err = defHeader(d)
		case "force_quote":
			err = optionError(codeUnsupported, "COPY force quote only available using COPY TO")
		case "force_not_null":
			o.ForceNotNullAll, o.ForceNotNull, err = defColumns(d)
			forceNotNullSet = true
		case "force_null":
			o.ForceNullAll, o.ForceNull, err = defColumns(d)
			forceNullSet = true
		case "encoding":
			var v string
			if v, err = defString(d); err == nil && !SafeEncoding(v) {
				err = optionError(codeUnsupported, `COPY ENCODING "%s" cannot be split across shards`, v)
			}
		}
		if err != nil {
			return Options{}, err
		}
	}
	return resolveOptions(o, delim, null, quote, escape, forceNotNullSet, forceNullSet)
}

// resolveOptions applies the server's per-format rules and defaults to
// the options as written.
func resolveOptions(o Options, delim, null, quote, escape *string, forceNotNull, forceNull bool) (Options, error) {
	def := DefaultOptions(o.Format)
	if o.Format == Binary {
		switch {
		case delim != nil:
			return Options{}, optionError(codeSyntax, "cannot specify DELIMITER in BINARY mode")
		case null != nil:
			return Options{}, optionError(codeSyntax, "cannot specify NULL in BINARY mode")
		case o.HasDefault:
			return Options{}, optionError(codeSyntax, "cannot specify DEFAULT in BINARY mode")
		}
	}
	o.Delimiter, o.Null = def.Delimiter, def.Null
	if delim != nil {
		if len(*delim) != 1 {
			return Options{}, optionError(codeUnsupported, "COPY delimiter must be a single one-byte character")
		}
		o.Delimiter = (*delim)[0]
	}
	if null != nil {
		o.Null = *null
	}
	if o.Format != CSV {
		switch {
		case quote != nil:
			return Options{}, optionError(codeUnsupported, "COPY quote available only in CSV mode")
		case escape != nil:
			return Options{}, optionError(codeUnsupported, "COPY escape available only in CSV mode")
		case forceNotNull:
			return Options{}, optionError(codeUnsupported, "COPY force not null available only in CSV mode")
		case forceNull:
			return Options{}, optionError(codeUnsupported, "COPY force null available only in CSV mode")
		}
	} else {
		o.Quote = '"'
		if quote != nil {
			if len(*quote) != 1 {
				return Options{}, optionError(codeUnsupported, "COPY quote must be a single one-byte character")
			}
			o.Quote = (*quote)[0]
		}
		o.Escape = o.Quote
		if escape != nil {
			if len(*escape) != 1 {
				return Options{}, optionError(codeUnsupported, "COPY escape must be a single one-byte character")
			}
			o.Escape = (*escape)[0]
		}
	}
	if err := o.check(); err != nil {
		return Options{}, err
	}
	return o, nil
}

// defString is the server's defGetString: the option's argument as text.
func defString(d *pg_query.DefElem) (string, error) {
	a := d.Arg
	switch {
	case a == nil:
	case a.GetString_() != nil:
		return a.GetString_().Sval, nil
	case a.GetInteger() != nil:
		return strconv.Itoa(int(a.GetInteger().Ival)), nil
	case a.GetFloat() != nil:
		return a.GetFloat().Fval, nil
	case a.GetBoolean() != nil:
		return strconv.FormatBool(a.GetBoolean().Boolval), nil
	case a.GetAStar() != nil:
		return "*", nil
	}
	return "", optionError(codeSyntax, "%s requires a parameter", d.Defname)
}

func defStringPtr(d *pg_query.DefElem) (*string, error) {
	v, err := defString(d)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// defHeader is the server's defGetCopyHeaderChoice. MATCH, which makes
// each server check the header against its columns, counts as true: the
// header line reaches every shard, which checks it.
func defHeader(d *pg_query.DefElem) (bool, error) {
	a := d.Arg
	switch {
	case a == nil:
		return true, nil
	case a.GetBoolean() != nil:
		return a.GetBoolean().Boolval, nil
	case a.GetInteger() != nil:
		switch a.GetInteger().Ival {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
	default:
		v, err := defString(d)
		if err != nil {
			return false, err
		}
		switch strings.ToLower(v) {
		case "true", "on", "match":
			return true, nil
		case "false", "off":
			return false, nil
		}
	}
	return false, optionError(codeSyntax, `%s requires a Boolean value or "match"`, d.Defname)
}

// defColumns reads a FORCE_NOT_NULL or FORCE_NULL argument: "*" or a
// column list.
func defColumns(d *pg_query.DefElem) (all bool, cols []string, err error) {
	a := d.Arg
	if a != nil && a.GetAStar() != nil {
		return true, nil, nil
	}
	if a == nil || a.GetList() == nil {
		return false, nil, optionError(codeInvalidParam, `argument to option "%s" must be a list of column names`, d.Defname)
	}
	for _, item := range a.GetList().Items {
		s := item.GetString_()
		if s == nil {
			return false, nil, optionError(codeInvalidParam, `argument to option "%s" must be a list of column names`, d.Defname)
		}
		cols = append(cols, s.Sval)
	}
	return false, cols, nil
}

// unsafeEncodings are the server's client-only encodings, normalised as
// the server normalises names (lower case, letters and digits only).
// Their multibyte characters may hold bytes below 0x80, such as a
// backslash, so a bytewise parser would misread them; the server
// converts them to the database encoding before parsing.
var unsafeEncodings = map[string]bool{
	"big5": true, "win950": true, "windows950": true,
	"gbk": true, "win936": true, "windows936": true, "gb18030": true,
	"uhc": true, "win949": true, "windows949": true, "johab": true,
	"sjis": true, "mskanji": true, "shiftjis": true, "win932": true, "windows932": true,
	"shiftjis2004": true,
}

// SafeEncoding reports whether COPY data in the named encoding can be
// split bytewise: false for SJIS, SHIFT_JIS_2004, BIG5, GBK, UHC,
// GB18030 and JOHAB (and their aliases). A proxy must also check the
// session's client_encoding, which COPY data uses when the statement has
// no ENCODING option.
func SafeEncoding(name string) bool {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return !unsafeEncodings[b.String()]
}
