package slogcore

import (
	"encoding"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"time"
)

// AppendValue appends the text form of a resolved, non-group value:
//
//	string          as is
//	int, uint       decimal
//	float           strconv 'g' form, shortest exact ("0.25", "1e+21")
//	bool            true or false
//	time.Duration   as Duration.String ("1.5s", "250ms")
//	time.Time       RFC 3339 with nanoseconds, in the time's own zone
//	[]byte          the bytes as they are
//	error           its Error()
//	TextMarshaler   its MarshalText, or its error text if that fails
//	fmt.Stringer    its String()
//	anything else   fmt's %+v
//
// Only the last four use reflection or fmt, and only for values of their
// kind.
//
// A method that panics (Error, MarshalText, String, and LogValue in
// Resolve) does not take the record down, as in log/slog's own handlers:
// the value is written as "<nil>" when it is a nil pointer (a method that
// does not guard against a nil receiver, the usual cause), and as
// "!PANIC: " and the panic's value otherwise.
func AppendValue(dst []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return append(dst, v.String()...)
	case slog.KindInt64:
		return strconv.AppendInt(dst, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(dst, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(dst, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(dst, v.Bool())
	case slog.KindDuration:
		return appendDuration(dst, v.Duration())
	case slog.KindTime:
		return v.Time().AppendFormat(dst, time.RFC3339Nano)
	}
	return appendAny(dst, v.Any())
}

// appendAny is AppendValue for KindAny. Its deferred recover costs other
// kinds nothing.
func appendAny(dst []byte, x any) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			// What was appended before the panic is dropped: dst is the
			// slice as it was on entry.
			out = appendPanic(dst, x, r)
		}
	}()
	switch x := x.(type) {
	case nil:
		return append(dst, "<nil>"...)
	case []byte:
		return append(dst, x...)
	case error:
		return append(dst, x.Error()...)
	case encoding.TextMarshaler:
		b, err := x.MarshalText()
		if err != nil {
			return append(dst, "!ERROR:"+err.Error()...)
		}
		return append(dst, b...)
	case fmt.Formatter:
		return fmt.Appendf(dst, "%+v", x)
	case fmt.Stringer:
		// fmt would call String too, but print its panic its own way.
		return append(dst, x.String()...)
	default:
		return fmt.Appendf(dst, "%+v", x)
	}
}

// appendPanic appends what stands for x, whose method panicked with r.
// Reflection is used here only, on a path no well-behaved value takes.
func appendPanic(dst []byte, x, r any) []byte {
	if v := reflect.ValueOf(x); v.Kind() == reflect.Pointer && v.IsNil() {
		return append(dst, "<nil>"...)
	}
	return fmt.Appendf(dst, "!PANIC: %v", r)
}

// Resolve is slog.Value.Resolve, with a LogValue that panics written as
// AppendValue writes any method that panics ("<nil>" or "!PANIC: …"),
// rather than as slog's error with a stack.
func Resolve(v slog.Value) slog.Value {
	if v.Kind() != slog.KindLogValuer {
		return v
	}
	return resolveLogValuer(v)
}

func resolveLogValuer(v slog.Value) (rv slog.Value) {
	var cur any
	defer func() {
		if r := recover(); r != nil {
			rv = slog.StringValue(string(appendPanic(nil, cur, r)))
		}
	}()
	// slog's own bound on LogValuers that return LogValuers.
	for i := 0; i < 100 && v.Kind() == slog.KindLogValuer; i++ {
		lv := v.LogValuer()
		cur = lv
		v = lv.LogValue()
	}
	return v.Resolve()
}

// appendDuration appends d as time.Duration.String does, without the
// string it allocates.
func appendDuration(dst []byte, d time.Duration) []byte {
	if d == 0 {
		return append(dst, "0s"...)
	}
	u := uint64(d)
	if d < 0 {
		dst = append(dst, '-')
		u = -u
	}
	if u < uint64(time.Second) {
		// Below a second: one unit, ns, µs or ms, with a fraction.
		var unit string
		var prec int
		switch {
		case u < uint64(time.Microsecond):
			return append(strconv.AppendUint(dst, u, 10), "ns"...)
		case u < uint64(time.Millisecond):
			unit, prec = "µs", 3
		default:
			unit, prec = "ms", 6
		}
		dst = appendFraction(dst, u, prec)
		return append(dst, unit...)
	}
	// A second or more: [h][m]s, the seconds with a fraction.
	secs := u / uint64(time.Second)
	frac := u % uint64(time.Second)
	h, m, s := secs/3600, secs/60%60, secs%60
	if h > 0 {
		dst = strconv.AppendUint(dst, h, 10)
		dst = append(dst, 'h')
	}
	if h > 0 || m > 0 {
		dst = strconv.AppendUint(dst, m, 10)
		dst = append(dst, 'm')
	}
	dst = strconv.AppendUint(dst, s, 10)
	dst = appendDecimals(dst, frac, 9)
	return append(dst, 's')
}

// appendFraction appends v / 10^prec with its decimals, trailing zeros
// dropped.
func appendFraction(dst []byte, v uint64, prec int) []byte {
	p := uint64(1)
	for i := 0; i < prec; i++ {
		p *= 10
	}
	dst = strconv.AppendUint(dst, v/p, 10)
	return appendDecimals(dst, v%p, prec)
}

// appendDecimals appends ".ddd" for frac, a fraction of 10^prec, without
// trailing zeros; nothing when frac is 0.
func appendDecimals(dst []byte, frac uint64, prec int) []byte {
	if frac == 0 {
		return dst
	}
	var digits [20]byte
	for i := prec - 1; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := prec
	for n > 0 && digits[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, digits[:n]...)
}
