package testutil

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads stdoutfallback's lines back as a consumer would: a
// strict parser of the format its Handler documents, independent of the
// encoder.

// ParsedLine is one line, parsed.
type ParsedLine struct {
	Pri   int
	Msg   string
	Attrs []Pair
}

// Pair is one key=value of a line, unquoted and unescaped.
type Pair struct{ Key, Value string }

// ParseLine parses one line, its newline included. The message is not
// delimited, so it is taken to end at the first space after which the
// rest of the line parses as key=value pairs; without one, the message is
// the whole line.
func ParseLine(s string) (ParsedLine, error) {
	var l ParsedLine
	body, ok := strings.CutSuffix(s, "\n")
	if !ok {
		return l, errors.New("no newline at the end")
	}
	if strings.ContainsAny(body, "\n") {
		return l, errors.New("newline inside the line")
	}
	if len(body) < 3 || body[0] != '<' || body[1] < '0' || body[1] > '7' || body[2] != '>' {
		return l, fmt.Errorf("no <N> prefix in %q", body)
	}
	l.Pri = int(body[1] - '0')
	rest := body[3:]
	for i := 0; i < len(rest); i++ {
		if rest[i] != ' ' {
			continue
		}
		attrs, err := ParsePairs(rest[i+1:])
		if err != nil {
			continue
		}
		msg, err := Unescape(rest[:i], false)
		if err != nil {
			return l, fmt.Errorf("message %q: %v", rest[:i], err)
		}
		l.Msg, l.Attrs = msg, attrs
		return l, nil
	}
	msg, err := Unescape(rest, false)
	if err != nil {
		return l, fmt.Errorf("message %q: %v", rest, err)
	}
	l.Msg = msg
	return l, nil
}

// ParsePairs parses "key=value" pairs separated by one space each.
func ParsePairs(s string) ([]Pair, error) {
	var pairs []Pair
	for {
		key, rest, err := token(s, true)
		if err != nil {
			return nil, fmt.Errorf("key: %v", err)
		}
		if !strings.HasPrefix(rest, "=") {
			return nil, fmt.Errorf("no '=' after key %q", key)
		}
		value, rest, err := token(rest[1:], false)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %v", key, err)
		}
		pairs = append(pairs, Pair{key, value})
		if rest == "" {
			return pairs, nil
		}
		if rest[0] != ' ' {
			return nil, fmt.Errorf("%q after the value of %q", rest, key)
		}
		s = rest[1:]
	}
}

// token reads a key (up to '=') or a value (up to ' ' or the end): bare,
// non-empty and with nothing that would have needed quotes, or a quoted
// Go string literal.
func token(s string, isKey bool) (tok, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		end := -1
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				end = i
				break
			}
		}
		if end < 0 {
			return "", "", errors.New("unterminated quote")
		}
		lit := s[:end+1]
		tok, err := Unescape(lit[1:end], true)
		if err != nil {
			return "", "", err
		}
		// The documented promise: a quoted key or value is a Go literal.
		if u, err := strconv.Unquote(lit); err != nil || u != tok {
			return "", "", fmt.Errorf("strconv.Unquote(%s) = %q, %v; want %q", lit, u, err, tok)
		}
		return tok, s[end+1:], nil
	}
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || (isKey && s[i] == '=') {
			end = i
			break
		}
	}
	tok = s[:end]
	if tok == "" {
		return "", "", errors.New("empty bare token")
	}
	for i := 0; i < len(tok); {
		r, size := utf8.DecodeRuneInString(tok[i:])
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) || strings.ContainsRune("\"\\= ", r) {
			return "", "", fmt.Errorf("bare token %q has %q", tok, tok[i:i+size])
		}
		i += size
	}
	return tok, s[end:], nil
}

// Unescape undoes the escapes of the message (quoted false) or of a
// quoted key or value (quoted true), and checks that what is not escaped
// is printable UTF-8 and, in quotes, not '"'.
func Unescape(s string, quoted bool) (string, error) {
	var b []byte
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			if i+1 >= len(s) {
				return "", errors.New("lone backslash at the end")
			}
			e := s[i+1]
			i += 2
			switch e {
			case '\\':
				b = append(b, '\\')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case '"':
				if !quoted {
					return "", errors.New(`\" outside quotes`)
				}
				b = append(b, '"')
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if i+n > len(s) {
					return "", fmt.Errorf(`short \%c escape`, e)
				}
				v, err := strconv.ParseUint(s[i:i+n], 16, 32)
				if err != nil {
					return "", fmt.Errorf(`bad \%c escape %q`, e, s[i:i+n])
				}
				i += n
				if e == 'x' {
					b = append(b, byte(v))
				} else if !utf8.ValidRune(rune(v)) {
					return "", fmt.Errorf(`\%c escape of invalid rune %#x`, e, v)
				} else {
					b = utf8.AppendRune(b, rune(v))
				}
			default:
				return "", fmt.Errorf(`unknown escape \%c`, e)
			}
			continue
		}
		if quoted && c == '"' {
			return "", errors.New(`unescaped " in quotes`)
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			return "", fmt.Errorf("unescaped %q", s[i:i+size])
		}
		b = append(b, s[i:i+size]...)
		i += size
	}
	return string(b), nil
}

// ToMap turns a line into the map testing/slogtest checks: the priority
// under slog.LevelKey, the message under slog.MessageKey, and the
// attributes nested by the groups of their dotted keys.
func (l ParsedLine) ToMap() (map[string]any, error) {
	m := map[string]any{"level": l.Pri, "msg": l.Msg}
	for _, p := range l.Attrs {
		names := strings.Split(p.Key, ".")
		g := m
		for _, name := range names[:len(names)-1] {
			switch sub := g[name].(type) {
			case nil:
				next := map[string]any{}
				g[name] = next
				g = next
			case map[string]any:
				g = sub
			default:
				return nil, fmt.Errorf("%q is both a value and a group", name)
			}
		}
		leaf := names[len(names)-1]
		if _, dup := g[leaf]; dup {
			return nil, fmt.Errorf("key %q twice", p.Key)
		}
		g[leaf] = p.Value
	}
	return m, nil
}
