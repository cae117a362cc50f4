package slogcore

import (
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"testing"
	"time"
)

func TestAppendValue(t *testing.T) {
	tm := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		v    slog.Value
		want string
	}{
		{"string", slog.StringValue("a b\nc"), "a b\nc"},
		{"int", slog.IntValue(-42), "-42"},
		{"uint", slog.Uint64Value(math.MaxUint64), "18446744073709551615"},
		{"float", slog.Float64Value(0.25), "0.25"},
		{"big float", slog.Float64Value(1e21), "1e+21"},
		{"bool", slog.BoolValue(true), "true"},
		{"duration", slog.DurationValue(1500 * time.Millisecond), "1.5s"},
		{"time", slog.TimeValue(tm), "2026-11-25T12:00:00.123456789Z"},
		{"bytes raw", slog.AnyValue([]byte{0, 0xff, '\n'}), "\x00\xff\n"},
		{"error", slog.AnyValue(errors.New("boom")), "boom"},
		{"text marshaler", slog.AnyValue(netip.MustParseAddr("::1")), "::1"},
		{"struct by fmt", slog.AnyValue(struct{ A int }{7}), "{A:7}"},
		{"nil", slog.AnyValue(nil), "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendValue(nil, tt.v)); got != tt.want {
				t.Errorf("AppendValue = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppendDuration(t *testing.T) {
	for _, d := range []time.Duration{
		0, 1, 999, time.Microsecond, 1500 * time.Nanosecond, time.Millisecond, 1234567,
		time.Second, 1500 * time.Millisecond, time.Minute, 90 * time.Minute, 100*time.Hour + 1,
		-time.Second, -1, math.MaxInt64, math.MinInt64, math.MinInt64 + 1,
	} {
		if got, want := string(appendDuration(nil, d)), d.String(); got != want {
			t.Errorf("appendDuration(%d) = %q, want %q", int64(d), got, want)
		}
	}
}

func FuzzAppendDuration(f *testing.F) {
	f.Add(int64(1500))
	f.Add(int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, n int64) {
		d := time.Duration(n)
		if got, want := string(appendDuration(nil, d)), d.String(); got != want {
			t.Fatalf("appendDuration(%d) = %q, want %q", n, got, want)
		}
	})
}
