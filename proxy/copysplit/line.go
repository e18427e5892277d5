package copysplit

import (
	"bytes"
	"errors"
)

// This file finds where text and CSV lines end. It is a streaming
// rendering of the server's CopyReadLineText (PostgreSQL 15-17): a line
// may end in any chunk, so the scanner's state lives in the Splitter and
// every look-ahead the server does is a state here.

// eolType is the data's line ending, which the server fixes on the first
// line and then enforces.
type eolType uint8

const (
	eolUnknown eolType = iota
	eolNL
	eolCR
	eolCRNL
)

// scanState says what the line scanner is in the middle of.
type scanState uint8

const (
	stNormal       scanState = iota
	stBackslash              // text: after a backslash; the next byte is escaped unless it is '.'
	stCSVBackslash           // CSV: a backslash began the line; "\." may follow
	stCR                     // after a line-ending '\r' that a '\n' may follow
	stDot                    // after "\."
	stDotCR                  // after "\.\r", with CRLF line endings
)

// event is what a scan found.
type event uint8

const (
	evNone    event = iota
	evLine          // a line ended with its line ending
	evMarker        // a line ended with "\." and a line ending: the end of the data
	evEOF           // the data ended without a line ending
	evHeader        // the binary header is complete
	evTrailer       // the binary trailer
)

// lineState is the line scanner's state within the current line.
type lineState struct {
	st scanState
	// first says no byte of the line has been scanned: in CSV, "\." ends
	// the data only at the start of a line.
	first bool
	// inQuote and lastWasEsc track CSV quoting, as the server does.
	inQuote, lastWasEsc bool
	// markAt is the offset in the line of the backslash that may begin
	// "\.": what precedes it is the line's content.
	markAt int
}

func (ls *lineState) reset() { *ls = lineState{first: true} }

// errRescan would mean the rescan after a CSV "\." that is data ended a
// line, which the server's rules rule out.
var errRescan = errors.New("copysplit: internal error: line ended while rescanning \\.")

func (s *Splitter) initScanner() {
	s.special['\r'], s.special['\n'], s.special['\\'] = true, true, true
	if s.csv {
		s.quote, s.escape = s.opts.Quote, s.opts.Escape
		if s.escape == s.quote {
			// As in the server, which then also treats a NUL byte inside
			// quotes as the escape; the data is invalid in any encoding
			// then, but the rows must still split the same way.
			s.escape = 0
		}
		s.special[s.quote], s.special[s.escape] = true, true
	}
}

// nextText returns the next text or CSV row.
func (s *Splitter) nextText() (Row, bool, error) {
	for {
		if s.done || s.pos >= len(s.chunk) {
			// After "\." the server reads and drops the rest of the data.
			s.chunk, s.pos = nil, 0
			return Row{}, false, nil
		}
		start := s.pos
		var data, content []byte
		ev := evLine
		if n, clen, ok := s.fastLine(); ok {
			data = capped(s.chunk[start : start+n])
			content = data[:clen]
			s.pos = start + n
		} else {
			end, e, err := s.scanLine(start)
			if err != nil {
				return Row{}, false, err
			}
			if e == evNone {
				s.keepRest()
				return Row{}, false, nil
			}
			ev = e
			data = s.take(start, end)
			content = s.content(data, ev)
		}
		s.ls.reset()
		if row, ok, err := s.endLine(data, content, ev); ok || err != nil {
			return row, ok, err
		}
	}
}

// finishText handles the end of text or CSV data: a last line without a
// line ending, or a scan cut short.
func (s *Splitter) finishText() (Row, bool, error) {
	if s.done {
		return Row{}, false, nil
	}
	ev, err := s.eofLine()
	if err != nil {
		return Row{}, false, err
	}
	if ev == evEOF && len(s.pend) == 0 {
		return Row{}, false, nil
	}
	data := capped(s.pend)
	s.pendOut = true
	content := s.content(data, ev)
	s.ls.reset()
	return s.endLine(data, content, ev)
}

// endLine turns a line into a row, or into the header, or ends the data.
func (s *Splitter) endLine(data, content []byte, ev event) (Row, bool, error) {
	if ev == evMarker {
		s.done = true
		if len(content) == 0 {
			// "\." alone is no row. In text format PostgreSQL before 18
			// also takes the data before a "\." as a last line; the row
			// keeps the marker, so a shard ends its data there too.
			s.releasePend()
			return Row{}, false, nil
		}
	}
	s.line++
	if !s.headerDone {
		s.setHeader(data)
		s.releasePend()
		return Row{}, false, nil
	}
	var key []byte
	var null bool
	var err error
	if s.csv {
		key, null, err = s.csvKey(content)
	} else {
		key, null, err = s.textKey(content)
	}
	if err != nil {
		return Row{}, false, err
	}
	return Row{Data: data, Key: key, Null: null, Line: s.line}, true, nil
}

// content returns a line without its line ending or end marker.
func (s *Splitter) content(data []byte, ev event) []byte {
	switch ev {
	case evMarker:
		return data[:s.ls.markAt]
	case evEOF:
		return data
	}
	if s.eol == eolCRNL {
		return data[:len(data)-2]
	}
	return data[:len(data)-1]
}

// fastLine finds a line that starts at s.pos and needs none of the
// scanner's rules: it ends in this chunk with the data's line ending and
// holds no carriage return, no backslash in text format, no quote in CSV.
// It returns the line's length and its content's.
func (s *Splitter) fastLine() (n, clen int, ok bool) {
	if len(s.pend) > 0 || s.ls.st != stNormal || !s.ls.first {
		return 0, 0, false
	}
	rest := s.chunk[s.pos:]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 {
		return 0, 0, false
	}
	seg := rest[:nl]
	switch s.eol {
	case eolNL, eolUnknown:
	case eolCRNL:
		if nl == 0 || seg[nl-1] != '\r' {
			return 0, 0, false
		}
		seg = seg[:nl-1]
	default:
		return 0, 0, false
	}
	if bytes.IndexByte(seg, '\r') >= 0 {
		return 0, 0, false
	}
	if s.csv {
		if bytes.IndexByte(seg, s.quote) >= 0 || len(seg) > 0 && seg[0] == '\\' {
			return 0, 0, false
		}
	} else if bytes.IndexByte(seg, '\\') >= 0 {
		return 0, 0, false
	}
	if s.eol == eolUnknown {
		s.eol = eolNL
	}
	return nl + 1, len(seg), true
}

// scanLine scans s.chunk from start for the end of the current line. It
// returns the index just past the line and what ended it, or evNone when
// the chunk ends first.
func (s *Splitter) scanLine(start int) (int, event, error) {
	buf := s.chunk
	base := len(s.pend) - start // the line offset of buf[i] is base+i
	ls := &s.ls
	for i := start; i < len(buf); {
		if ls.st == stNormal {
			j := i
			for j < len(buf) && !s.special[buf[j]] {
				j++
			}
			if j > i {
				// Every byte the server looks at clears these.
				ls.first, ls.lastWasEsc = false, false
				if i = j; i == len(buf) {
					break
				}
			}
		}
		consumed, ev, err := s.step(buf[i], base+i)
		if err != nil {
			return 0, evNone, err
		}
		if consumed {
			i++
		}
		if ev != evNone {
			return i, ev, nil
		}
	}
	return len(buf), evNone, nil
}

// step scans one byte at line offset off. It reports whether the byte
// belongs to the current line (a '\r' line ending followed by something
// other than '\n' ends the line before that byte) and what it ended.
func (s *Splitter) step(c byte, off int) (bool, event, error) {
	ls := &s.ls
	switch ls.st {
	case stBackslash:
		// Any byte after a backslash is escaped, a newline included.
		ls.st = stNormal
		if c == '.' {
			ls.st = stDot
		}
		return true, evNone, nil
	case stCSVBackslash:
		if c == '.' {
			ls.st = stDot
			return true, evNone, nil
		}
		ls.st = stNormal
	case stCR:
		ls.st = stNormal
		if c == '\n' {
			s.eol = eolCRNL
			return true, evLine, nil
		}
		if s.eol == eolCRNL {
			return false, evNone, s.errCR()
		}
		s.eol = eolCR
		return false, evLine, nil
	case stDot:
		return s.stepDot(c, off)
	case stDotCR:
		ls.st = stNormal
		switch {
		case c == '\n':
			return true, evMarker, nil
		case c == '\r':
			return false, evNone, s.errMarkerStyle()
		case !s.csv:
			return false, evNone, s.errMarkerCorrupt()
		}
		return s.notMarker(off, '.', '\r', c)
	}
	return s.stepNormal(c, off)
}

func (s *Splitter) stepNormal(c byte, off int) (bool, event, error) {
	ls := &s.ls
	first := ls.first
	ls.first = false
	if s.csv {
		if ls.inQuote && c == s.escape {
			ls.lastWasEsc = !ls.lastWasEsc
		}
		if c == s.quote && !ls.lastWasEsc {
			ls.inQuote = !ls.inQuote
		}
		if c != s.escape {
			ls.lastWasEsc = false
		}
	}
	switch {
	case (c == '\r' || c == '\n') && s.csv && ls.inQuote:
		// Line endings inside quotes are data.
	case c == '\r':
		switch s.eol {
		case eolUnknown, eolCRNL:
			ls.st = stCR
		case eolNL:
			return false, evNone, s.errCR()
		default:
			return true, evLine, nil
		}
	case c == '\n':
		if s.eol == eolCR || s.eol == eolCRNL {
			return false, evNone, s.errNL()
		}
		s.eol = eolNL
		return true, evLine, nil
	case c == '\\' && !s.csv:
		ls.st, ls.markAt = stBackslash, off
	case c == '\\' && first:
		ls.st, ls.markAt = stCSVBackslash, off
	}
	return true, evNone, nil
}

// stepDot scans the byte after "\.", which must be the line ending for
// the data to end there.
func (s *Splitter) stepDot(c byte, off int) (bool, event, error) {
	s.ls.st = stNormal
	if s.eol == eolCRNL {
		switch {
		case c == '\r':
			s.ls.st = stDotCR
			return true, evNone, nil
		case !s.csv && c == '\n':
			return false, evNone, s.errMarkerStyle()
		case !s.csv:
			return false, evNone, s.errMarkerCorrupt()
		}
		return s.notMarker(off, '.', c)
	}
	if c != '\r' && c != '\n' {
		if !s.csv {
			return false, evNone, s.errMarkerCorrupt()
		}
		return s.notMarker(off, '.', c)
	}
	if s.eol == eolNL && c != '\n' || s.eol == eolCR && c != '\r' {
		return false, evNone, s.errMarkerStyle()
	}
	return true, evMarker, nil
}

// notMarker handles a CSV line that starts with "\." but is data after
// all: the server rescans the bytes after the backslash as ordinary ones.
func (s *Splitter) notMarker(off int, rescan ...byte) (bool, event, error) {
	s.ls.st = stNormal
	last := len(rescan) - 1
	for _, b := range rescan[:last] {
		if _, ev, err := s.step(b, off); err != nil || ev != evNone {
			if err == nil {
				err = errRescan
			}
			return false, evNone, err
		}
	}
	return s.step(rescan[last], off)
}

// eofLine ends the scan at the end of the data: what the server does when
// its look-ahead finds no byte.
func (s *Splitter) eofLine() (event, error) {
	ls := &s.ls
	switch ls.st {
	case stCR:
		if s.eol == eolCRNL {
			return evNone, s.errCR()
		}
		s.eol = eolCR
		return evLine, nil
	case stDot, stDotCR:
		if !s.csv {
			return evNone, s.errMarkerCorrupt()
		}
		rescan := ".\r"
		if ls.st == stDot {
			rescan = "."
		}
		ls.st = stNormal
		for i := 0; i < len(rescan); i++ {
			if _, ev, err := s.step(rescan[i], 0); err != nil || ev != evNone {
				if err == nil {
					err = errRescan
				}
				return evNone, err
			}
		}
		return s.eofLine()
	}
	if s.csv && ls.inQuote {
		return evNone, dataError(s.line+1, "unterminated CSV quoted field")
	}
	return evEOF, nil
}
