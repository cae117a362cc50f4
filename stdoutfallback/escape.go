package stdoutfallback

import (
	"log/slog"
	"unicode"
	"unicode/utf8"

	"github.com/newstyle-go/newstyle/internal/slogcore"
)

// text is what the escaper reads: a string (a message, a key, a string
// value) or bytes (a value already formatted into the line's buffer, a
// traceback). Both instantiations copy nothing and allocate nothing.
type text interface{ ~string | ~[]byte }

// asciiQuote marks the ASCII bytes that make a key or value quoted: the
// control characters and DEL, which must be escaped, '\\' and '"', which
// are escaped inside quotes, and ' ' and '=', which would end a bare key
// or value.
var asciiQuote = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c < 0x20 || c == 0x7f || c == '\\' || c == '"' || c == ' ' || c == '='
	}
	return t
}()

// decodeRune decodes the first rune of s, a string or bytes, without
// converting (and so copying) the whole of s.
func decodeRune[S text](s S) (rune, int) {
	var b [utf8.UTFMax]byte
	return utf8.DecodeRune(b[:copy(b[:], s)])
}

// plain reports whether s can be written as a bare key or value: every
// byte printable ASCII other than space, '=', '"' and '\\', or part of a
// valid UTF-8 sequence for a printable rune. The empty string is plain;
// needsQuote is what callers ask.
func plain[S text](s S) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if asciiQuote[c] {
				return false
			}
			i++
			continue
		}
		r, size := decodeRune(s[i:])
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			return false
		}
		i += size
	}
	return true
}

// needsQuote reports whether a key or value s must be written in quotes:
// when it is empty or not plain.
func needsQuote[S text](s S) bool { return len(s) == 0 || !plain(s) }

const hexDigits = "0123456789abcdef"

// appendEscaped appends s with these escapes, which make it printable
// text without line breaks:
//
//	\            \\
//	newline      \n
//	CR           \r
//	tab          \t
//	"            \"  (only when quoted)
//	other C0 control characters, NUL and DEL     \xNN
//	each byte of invalid UTF-8                   \xNN
//	non-printable runes (unicode.IsPrint false:
//	C1 controls, U+2028, U+00A0, U+FEFF, …)      \uNNNN or \UNNNNNNNN
//
// Everything else is copied as it is. These are the escapes of Go's string
// literals, so a quoted result is a Go string literal (strconv.Unquote
// reads it back); unlike strconv.Quote, \a \b \f \v are written as \xNN
// and printable runes are never escaped.
func appendEscaped[S text](dst []byte, s S, quoted bool) []byte {
	start := 0 // s[start:i] is still to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != 0x7f && c != '\\' && (c != '"' || !quoted) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			i++
			start = i
			continue
		}
		if unicode.IsPrint(r) {
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		if r < 0x10000 {
			dst = append(dst, '\\', 'u')
			dst = appendHex(dst, uint32(r), 4)
		} else {
			dst = append(dst, '\\', 'U')
			dst = appendHex(dst, uint32(r), 8)
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// appendHex appends the n lowest hex digits of v.
func appendHex(dst []byte, v uint32, n int) []byte {
	for shift := 4 * (n - 1); shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(v>>uint(shift))&0xf])
	}
	return dst
}

// appendQuoted appends s between double quotes, escaped.
func appendQuoted[S text](dst []byte, s S) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s, true)
	return append(dst, '"')
}

// appendString appends a value s: as it is when plain and not empty,
// quoted otherwise.
func appendString[S text](dst []byte, s S) []byte {
	if needsQuote(s) {
		return appendQuoted(dst, s)
	}
	return append(dst, s...)
}

// quoteTail quotes what dst holds past start, a value formatted there as
// raw text, when it needs quotes. The quoted form is built after the raw
// text, reading from it, then moved back over it: no scratch buffer.
func quoteTail(dst []byte, start int) []byte {
	raw := dst[start:]
	if !needsQuote(raw) {
		return dst
	}
	end := len(dst)
	// raw stays valid if append moves dst: nothing writes to the old array.
	dst = appendQuoted(dst, raw)
	n := copy(dst[start:], dst[end:])
	return dst[:start+n]
}

// appendKey appends the key made of prefix (the open groups, each name
// followed by '.') and key: as it is when plain and not empty, quoted
// otherwise.
func appendKey(dst, prefix []byte, key string) []byte {
	if (len(prefix) == 0 && len(key) == 0) || !plain(prefix) || !plain(key) {
		dst = append(dst, '"')
		dst = appendEscaped(dst, prefix, true)
		dst = appendEscaped(dst, key, true)
		return append(dst, '"')
	}
	dst = append(dst, prefix...)
	return append(dst, key...)
}

// appendValue appends a resolved, non-group value in the text form of
// slogcore.AppendValue, quoted when it needs to be. A string is escaped
// straight from the string; other kinds are formatted into dst first.
func appendValue(dst []byte, v slog.Value) []byte {
	if v.Kind() == slog.KindString {
		return appendString(dst, v.String())
	}
	start := len(dst)
	dst = slogcore.AppendValue(dst, v)
	return quoteTail(dst, start)
}

// attrFormat writes attributes as " key=value".
type attrFormat struct{}

// AppendGroup adds the group's name and a '.' to prefix, unescaped:
// AppendAttr escapes the whole key.
func (attrFormat) AppendGroup(prefix []byte, name string) []byte {
	return append(append(prefix, name...), '.')
}

func (attrFormat) AppendAttr(dst, prefix []byte, key string, v slog.Value) []byte {
	dst = append(dst, ' ')
	dst = appendKey(dst, prefix, key)
	dst = append(dst, '=')
	return appendValue(dst, v)
}
