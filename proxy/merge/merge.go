package merge

import (
	"errors"
	"fmt"
	"io"
)

// concat streams the sources one after another. Rows pass through as
// the views the sources gave, so memory does not depend on row count.
func (p *plan) concat(sources []Source, out *sink) error {
	for i, src := range sources {
		for {
			row, err := src.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := checkWidth(i, row, len(p.cols)); err != nil {
				return err
			}
			if err := out.put(row); err != nil {
				return err
			}
		}
	}
	return nil
}

// cursor is one sorted source in the k-way merge: its pending row,
// copied out of the source's view, and the row's decoded sort keys. The
// previous row's storage is kept as spare so that each new row can be
// checked against the one emitted just before it.
type cursor struct {
	src   Source
	index int
	row   [][]byte
	keys  []datum
	buf   []byte
	spare struct {
		row  [][]byte
		keys []datum
		buf  []byte
	}
	started bool
}

// advance reads the cursor's next row; false at the end of the source.
func (c *cursor) advance(p *plan) (bool, error) {
	row, err := c.src.Next()
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := checkWidth(c.index, row, len(p.cols)); err != nil {
		return false, err
	}
	s := &c.spare
	s.row, s.buf = copyRow(s.row, s.buf, row)
	if s.keys == nil {
		s.keys = make([]datum, len(p.order))
	}
	if err := p.readKeys(s.keys, s.row); err != nil {
		return false, err
	}
	// A shard that sorts differently from the engine (say, another
	// collation) would make the merge silently wrong: refuse instead.
	if c.started && compareKeys(p.order, s.keys, c.keys) < 0 {
		return false, &Error{Code: codeInternal, Message: fmt.Sprintf(
			"shard source %d returned rows out of ORDER BY order; its collation or sort rules differ from the merge's (bytewise, the C collation)", c.index)}
	}
	c.row, s.row = s.row, c.row
	c.keys, s.keys = s.keys, c.keys
	c.buf, s.buf = s.buf, c.buf
	c.started = true
	return true, nil
}

// copyRow copies row's values into one buffer, keeping NULLs nil and
// empty values non-nil.
func copyRow(dst [][]byte, buf []byte, row [][]byte) ([][]byte, []byte) {
	n := 0
	for _, v := range row {
		n += len(v)
	}
	if buf == nil || cap(buf) < n {
		buf = make([]byte, 0, max(n, 2*cap(buf), 64))
	}
	buf, dst = buf[:0], dst[:0]
	for _, v := range row {
		if v == nil {
			dst = append(dst, nil)
			continue
		}
		start := len(buf)
		buf = append(buf, v...)
		dst = append(dst, buf[start:len(buf):len(buf)])
	}
	return dst, buf
}

// mergeSorted is the k-way merge of sources each sorted by p.order: a
// binary min-heap of cursors holding one pending row per source. Ties go
// to the lower source index, which keeps the merge deterministic.
func (p *plan) mergeSorted(sources []Source, out *sink) error {
	h := make([]*cursor, 0, len(sources))
	for i, src := range sources {
		c := &cursor{src: src, index: i, keys: make([]datum, len(p.order))}
		ok, err := c.advance(p)
		if err != nil {
			return err
		}
		if ok {
			h = append(h, c)
		}
	}
	less := func(a, b *cursor) bool {
		if c := compareKeys(p.order, a.keys, b.keys); c != 0 {
			return c < 0
		}
		return a.index < b.index
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i, less)
	}
	for len(h) > 0 {
		c := h[0]
		if err := out.put(c.row); err != nil {
			return err
		}
		ok, err := c.advance(p)
		if err != nil {
			return err
		}
		if !ok {
			last := len(h) - 1
			h[0], h[last] = h[last], nil
			h = h[:last]
		}
		siftDown(h, 0, less)
	}
	return nil
}

func siftDown(h []*cursor, i int, less func(a, b *cursor) bool) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && less(h[r], h[l]) {
			m = r
		}
		if !less(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
