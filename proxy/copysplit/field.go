package copysplit

import "bytes"

// This file reads the key field out of a complete line, following the
// server's CopyReadAttributesText and CopyReadAttributesCSV. Fields after
// the key are not looked at: the shard that gets the row checks them.

// textKey returns the key field of a text-format line: de-escaped, or
// null when its raw text is the NULL marker.
func (s *Splitter) textKey(line []byte) ([]byte, bool, error) {
	delim := s.opts.Delimiter
	// Without backslashes a field is the bytes between delimiters and
	// needs no de-escaping: the common case, done with IndexByte.
	plain := bytes.IndexByte(line, '\\') < 0
	i := 0
	for f := 0; f < s.key.Index; f++ {
		var end int
		var found bool
		if plain {
			j := bytes.IndexByte(line[i:], delim)
			end, found = i+j, j >= 0
		} else {
			end, found = textFieldEnd(line, i, delim)
		}
		if !found {
			return nil, false, s.errMissing(s.line, f+1)
		}
		i = end + 1
	}
	var end int
	if plain {
		end = len(line)
		if j := bytes.IndexByte(line[i:], delim); j >= 0 {
			end = i + j
		}
	} else {
		end, _ = textFieldEnd(line, i, delim)
	}
	raw := line[i:end]
	// The server compares the markers with the field before de-escaping.
	if string(raw) == s.opts.Null {
		return nil, true, nil
	}
	if s.opts.HasDefault && string(raw) == s.opts.Default {
		return nil, false, s.errDefault()
	}
	if plain {
		return capped(raw), false, nil
	}
	s.keyBuf = unescapeText(s.keyBuf[:0], raw)
	return capped(s.keyBuf), false, nil
}

// textFieldEnd returns where the text field starting at line[i] ends
// (the index of its delimiter, or of the line's end) and whether a
// delimiter ends it. An escape consumes its digits even when they are
// the delimiter, as upper-case hex digits may be; a backslash that ends
// the line is left out of the field, as the server leaves it out.
func textFieldEnd(line []byte, i int, delim byte) (int, bool) {
	for i < len(line) {
		c := line[i]
		if c == delim {
			return i, true
		}
		if c != '\\' {
			i++
			continue
		}
		if i+1 >= len(line) {
			return i, false
		}
		i = escapeEnd(line, i+1)
	}
	return len(line), false
}

// escapeEnd returns the index after the escape sequence whose first byte
// after the backslash is line[i].
func escapeEnd(line []byte, i int) int {
	c := line[i]
	i++
	switch {
	case c >= '0' && c <= '7':
		for n := 0; n < 2 && i < len(line) && isOctal(line[i]); n++ {
			i++
		}
	case c == 'x':
		for n := 0; n < 2 && i < len(line) && isHex(line[i]); n++ {
			i++
		}
	}
	return i
}

// unescapeText appends the de-escaped form of a text field to dst.
func unescapeText(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		i++
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		if i >= len(raw) {
			break
		}
		c = raw[i]
		i++
		switch c {
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 0; n < 2 && i < len(raw) && isOctal(raw[i]); n++ {
				v = v<<3 + int(raw[i]-'0')
				i++
			}
			c = byte(v) // the server keeps the low 8 bits of \777
		case 'x':
			if i < len(raw) && isHex(raw[i]) {
				v := hexValue(raw[i])
				i++
				if i < len(raw) && isHex(raw[i]) {
					v = v<<4 + hexValue(raw[i])
					i++
				}
				c = v
			}
			// "\x" without a hex digit is a plain 'x', as in the server.
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'v':
			c = '\v'
		}
		dst = append(dst, c)
	}
	return dst
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexValue(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// csvKey returns the key field of a CSV line: unquoted, or null when it
// is the NULL marker unquoted, after FORCE_NOT_NULL and FORCE_NULL.
func (s *Splitter) csvKey(line []byte) ([]byte, bool, error) {
	delim, quote := s.opts.Delimiter, s.opts.Quote
	plain := bytes.IndexByte(line, quote) < 0
	i := 0
	for f := 0; f < s.key.Index; f++ {
		var end int
		var found bool
		if plain {
			j := bytes.IndexByte(line[i:], delim)
			end, found = i+j, j >= 0
		} else {
			var err error
			if end, found, _, _, err = s.csvField(line, i, nil, false); err != nil {
				return nil, false, err
			}
		}
		if !found {
			return nil, false, s.errMissing(s.line, f+1)
		}
		i = end + 1
	}
	var (
		end      int
		val      []byte
		sawQuote bool
	)
	if plain {
		end = len(line)
		if j := bytes.IndexByte(line[i:], delim); j >= 0 {
			end = i + j
		}
		val = line[i:end]
	} else {
		var err error
		if end, _, sawQuote, s.keyBuf, err = s.csvField(line, i, s.keyBuf[:0], true); err != nil {
			return nil, false, err
		}
		val = s.keyBuf
	}
	raw := line[i:end]
	null := !sawQuote && string(raw) == s.opts.Null
	if !null && !sawQuote && s.opts.HasDefault && string(raw) == s.opts.Default {
		return nil, false, s.errDefault()
	}
	switch {
	case null && s.keyNotNull:
		// FORCE_NOT_NULL reads an unquoted NULL marker as its text.
		return s.nullText, false, nil
	case null:
		return nil, true, nil
	case s.keyForceNull && string(val) == s.opts.Null:
		// FORCE_NULL makes a quoted NULL marker NULL too.
		return nil, true, nil
	}
	return capped(val), false, nil
}

// csvField scans the CSV field starting at line[i], appending its
// unquoted value to dst when decode is set. It returns where the field
// ends (the index of its delimiter, or of the line's end), whether a
// delimiter ends it and whether it had a quoted part.
func (s *Splitter) csvField(line []byte, i int, dst []byte, decode bool) (end int, found, sawQuote bool, _ []byte, _ error) {
	delim, quote, escape := s.opts.Delimiter, s.opts.Quote, s.opts.Escape
	for {
		// Outside quotes.
		for {
			if i >= len(line) {
				return len(line), false, sawQuote, dst, nil
			}
			c := line[i]
			i++
			if c == delim {
				return i - 1, true, sawQuote, dst, nil
			}
			if c == quote {
				sawQuote = true
				break
			}
			if decode {
				dst = append(dst, c)
			}
		}
		// Inside quotes.
		for {
			if i >= len(line) {
				return 0, false, false, dst, dataError(s.line, "unterminated CSV quoted field")
			}
			c := line[i]
			i++
			// The escape escapes only itself and the quote; the test comes
			// first because escape and quote are usually the same.
			if c == escape && i < len(line) && (line[i] == escape || line[i] == quote) {
				if decode {
					dst = append(dst, line[i])
				}
				i++
				continue
			}
			if c == quote {
				break
			}
			if decode {
				dst = append(dst, c)
			}
		}
	}
}
