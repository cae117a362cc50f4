package crash

import (
	"bytes"
	"strconv"
)

// cutter keeps at most max bytes of what is written to it: everything
// while it fits; past that, the first half and the last half (a ring),
// and how many bytes there were in all. The watcher reads the crash
// output into one, so that a crash of any size costs it at most max
// bytes of memory.
type cutter struct {
	max   int
	head  []byte // the first bytes: up to max while all fit, then max/2
	tail  []byte // once over max: a ring of the last max-max/2 bytes, in head's buffer
	pos   int    // where the next byte goes in tail
	full  bool   // tail has wrapped: all of it holds output
	total int64
}

func (c *cutter) init(max int) { *c = cutter{max: max} }

// Write keeps what the cap allows of p; it never fails.
func (c *cutter) Write(p []byte) (int, error) {
	n := len(p)
	c.total += int64(n)
	if c.tail == nil {
		if len(c.head)+len(p) <= c.max {
			c.head = appendBounded(c.head, p, c.max)
			return n, nil
		}
		// Over the cap: the head keeps its first half, the rest of the
		// output goes to the tail, a ring in the buffer's second half.
		h := c.max / 2
		if len(c.head) < h {
			take := h - len(c.head)
			c.head = appendBounded(c.head, p[:take], c.max)
			p = p[take:]
		}
		buf := c.head
		if cap(buf) < c.max {
			buf = make([]byte, len(c.head), c.max)
			copy(buf, c.head)
		}
		// What the head held past its half is the ring's start.
		c.tail, c.pos = buf[h:c.max:c.max], len(buf)-h
		c.full = c.pos == len(c.tail)
		if c.full {
			c.pos = 0
		}
		c.head = buf[:h:h]
	}
	c.writeTail(p)
	return n, nil
}

// appendBounded appends p to b, growing b's capacity at most to limit, so
// that a cap of 8 MiB never costs 16.
func appendBounded(b, p []byte, limit int) []byte {
	if need := len(b) + len(p); need > cap(b) {
		c := min(max(2*cap(b), need, 64<<10), limit)
		nb := make([]byte, len(b), c)
		copy(nb, b)
		b = nb
	}
	return append(b, p...)
}

func (c *cutter) writeTail(p []byte) {
	t := len(c.tail)
	if len(p) >= t {
		copy(c.tail, p[len(p)-t:])
		c.pos, c.full = 0, true
		return
	}
	n := copy(c.tail[c.pos:], p)
	if n < len(p) {
		copy(c.tail, p[n:])
		c.full = true
	}
	c.pos = (c.pos + len(p)) % t
	if c.pos == 0 && len(p) > 0 {
		c.full = true
	}
}

// start returns up to n of the first bytes written.
func (c *cutter) start(n int) []byte { return c.head[:min(n, len(c.head))] }

// parts returns what was kept: all of it in head (tail nil), or the
// first and the last bytes, cut at line boundaries where there are
// some, with the number of bytes between them that were not kept.
func (c *cutter) parts() (head, tail []byte, cut int64) {
	if c.tail == nil {
		return c.head, nil, 0
	}
	if c.full {
		tail = append(append(make([]byte, 0, len(c.tail)), c.tail[c.pos:]...), c.tail[:c.pos]...)
	} else {
		tail = c.tail[:c.pos]
	}
	head, tail = lineHead(c.head), lineTail(tail)
	return head, tail, c.total - int64(len(head)) - int64(len(tail))
}

// lineHead cuts b after its last newline, if it has one.
func lineHead(b []byte) []byte {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[:i+1]
	}
	return b
}

// lineTail cuts b after its first newline, if one comes before its end.
func lineTail(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i+1 < len(b) {
		return b[i+1:]
	}
	return b
}

// keepEnds returns at most n bytes of head and tail (all of the output in
// head when tail is nil; its two ends otherwise): the first n/2 and the
// last n-n/2, each cut at a line boundary when it is cut at all.
func keepEnds(head, tail []byte, n int) ([]byte, []byte) {
	if tail == nil {
		if len(head) <= n {
			return head, nil
		}
		return lineHead(head[:n/2]), lineTail(head[len(head)-(n-n/2):])
	}
	if len(head)+len(tail) <= n {
		return head, tail
	}
	h := head
	if len(h) > n/2 {
		h = lineHead(h[:n/2])
	}
	t := tail
	if keep := max(n-len(h), 0); len(t) > keep {
		t = lineTail(t[len(t)-keep:])
	}
	return h, t
}

// appendCut appends the line that stands for cut bytes not kept, on a
// line of its own.
func appendCut(dst []byte, cut int64) []byte {
	if len(dst) > 0 && dst[len(dst)-1] != '\n' {
		dst = append(dst, '\n')
	}
	dst = append(dst, "[… "...)
	dst = strconv.AppendInt(dst, cut, 10)
	return append(dst, " bytes of the crash output cut here …]\n"...)
}
