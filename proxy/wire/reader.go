package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits on a message body, as PostgreSQL applies them: messages that carry
// SQL or data may be large, everything else is small. A length outside them
// means a broken or hostile peer, and the connection cannot be resynchronised.
const (
	SmallMessageLimit = 10_000
	LargeMessageLimit = 1<<30 - 1
)

// ErrMessageTooLarge reports a frame whose length field is out of bounds.
var ErrMessageTooLarge = errors.New("invalid message length")

// Reader reads frames from a buffered stream.
type Reader struct {
	br      *bufio.Reader
	scratch []byte
	// limit returns the largest body allowed for a message type.
	limit func(typ byte) int
}

// NewReader returns a Reader over r with a buffer of size bytes. limit may
// be nil, in which case every type may be up to LargeMessageLimit.
func NewReader(r io.Reader, size int, limit func(typ byte) int) *Reader {
	if limit == nil {
		limit = func(byte) int { return LargeMessageLimit }
	}
	return &Reader{br: bufio.NewReaderSize(r, size), limit: limit}
}

// ClientLimit is the body limit PostgreSQL applies to frontend messages.
func ClientLimit(typ byte) int {
	switch typ {
	case 'Q', 'P', 'B', 'd', 'F':
		return LargeMessageLimit
	case 'p':
		return 65535
	default:
		return SmallMessageLimit
	}
}

// Buffered reports how many bytes can be read without blocking. A relay
// flushes its output when this is zero: the peer has nothing more queued,
// so holding the output back would only add latency.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Peek returns the bytes buffered and not yet read, without consuming
// them: a look ahead at what the peer has already sent. The slice is valid
// only until the next call on r.
func (r *Reader) Peek() []byte {
	b, _ := r.br.Peek(r.br.Buffered())
	return b
}

// Header reads the next frame's type and body length.
func (r *Reader) Header() (typ byte, n int, err error) {
	hdr, err := r.br.Peek(5)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	typ = hdr[0]
	length := int32(binary.BigEndian.Uint32(hdr[1:]))
	if _, err := r.br.Discard(5); err != nil {
		return 0, 0, err
	}
	if length < 4 || int(length)-4 > r.limit(typ) {
		return typ, 0, fmt.Errorf("%w: %d bytes for message type %q", ErrMessageTooLarge, length, typ)
	}
	return typ, int(length) - 4, nil
}

// Body reads a body of n bytes announced by Header. The slice is valid only
// until the next call on r.
func (r *Reader) Body(n int) ([]byte, error) {
	if n <= r.br.Size() {
		b, err := r.br.Peek(n)
		if err != nil {
			return nil, unexpected(err)
		}
		// Discard only moves the read index: the peeked bytes stay intact
		// until the next read refills the buffer.
		_, _ = r.br.Discard(n)
		return b, nil
	}
	// Grow as the bytes arrive rather than trusting the length field with a
	// huge allocation up front.
	r.scratch = r.scratch[:0]
	for len(r.scratch) < n {
		chunk := min(n-len(r.scratch), 1<<20)
		start := len(r.scratch)
		r.scratch = append(r.scratch, make([]byte, chunk)...)
		if _, err := io.ReadFull(r.br, r.scratch[start:]); err != nil {
			return nil, unexpected(err)
		}
	}
	b := r.scratch
	if cap(r.scratch) > 4<<20 {
		r.scratch = nil // do not pin a huge buffer for the connection's life
	}
	return b, nil
}

// Skip discards a body of n bytes.
func (r *Reader) Skip(n int) error {
	_, err := r.br.Discard(n)
	return unexpected(err)
}

// CopyTo forwards a frame of type typ with an n-byte body to w without
// holding the whole body in memory, for large rows and COPY data.
func (r *Reader) CopyTo(w *bufio.Writer, typ byte, n int) error {
	WriteHeader(w, typ, n)
	if n <= r.br.Size() {
		b, err := r.Body(n)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err := io.CopyN(w, r.br, int64(n))
	return unexpected(err)
}

// ReadStartup reads an untyped startup-phase packet (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest) from r, unbuffered, so that no
// bytes of a TLS handshake that follows are consumed.
func ReadStartup(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	length := int32(binary.BigEndian.Uint32(hdr[:]))
	// PostgreSQL's own bounds for a startup packet.
	if length < 8 || length > 10_000 {
		return nil, fmt.Errorf("%w: invalid length of startup packet: %d", ErrMessageTooLarge, length)
	}
	body := make([]byte, length-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, unexpected(err)
	}
	return body, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// NewReaderFrom returns a Reader over an existing buffered reader, such as
// a pooled server connection's.
func NewReaderFrom(br *bufio.Reader, limit func(typ byte) int) *Reader {
	if limit == nil {
		limit = func(byte) int { return LargeMessageLimit }
	}
	return &Reader{br: br, limit: limit}
}
