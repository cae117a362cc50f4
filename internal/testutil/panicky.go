// Package testutil holds what the module's tests share. It is not for
// users: the public test kit is package journaltest.
package testutil

import "log/slog"

// PanickyValue is a value whose formatting method panics, with the text a
// handler must write for it, as log/slog's handlers do: "<nil>" for a nil
// pointer receiver, "!PANIC: " and the panic's value otherwise.
type PanickyValue struct {
	Name  string
	Value any
	Want  string
}

// PanickyValues lists a value for each method a handler calls: Error,
// MarshalText, String, LogValue, and an error's Unwrap and Stack.
func PanickyValues() []PanickyValue {
	return []PanickyValue{
		{"typed nil error", (*NilError)(nil), "<nil>"},
		{"Error panics", PanicError{}, "!PANIC: boom in Error"},
		{"typed nil TextMarshaler", (*NilText)(nil), "<nil>"},
		{"MarshalText panics", PanicText{}, "!PANIC: boom in MarshalText"},
		{"typed nil Stringer", (*NilStringer)(nil), "<nil>"},
		{"String panics", PanicStringer{}, "!PANIC: boom in String"},
		{"typed nil LogValuer", (*NilValuer)(nil), "<nil>"},
		{"LogValue panics", PanicValuer{}, "!PANIC: boom in LogValue"},
		{"Unwrap panics", UnwrapPanics{}, "unwrap panics"},
		{"Stack panics", StackPanics{}, "stack panics"},
	}
}

// NilError dereferences its receiver in Error.
type NilError struct{ msg string }

func (e *NilError) Error() string { return e.msg }

// PanicError panics in Error.
type PanicError struct{}

func (PanicError) Error() string { panic("boom in Error") }

// NilText dereferences its receiver in MarshalText.
type NilText struct{ b []byte }

func (t *NilText) MarshalText() ([]byte, error) { return t.b, nil }

// PanicText panics in MarshalText.
type PanicText struct{}

func (PanicText) MarshalText() ([]byte, error) { panic("boom in MarshalText") }

// NilStringer dereferences its receiver in String.
type NilStringer struct{ s string }

func (s *NilStringer) String() string { return s.s }

// PanicStringer panics in String.
type PanicStringer struct{}

func (PanicStringer) String() string { panic("boom in String") }

// NilValuer dereferences its receiver in LogValue.
type NilValuer struct{ v string }

func (v *NilValuer) LogValue() slog.Value { return slog.StringValue(v.v) }

// PanicValuer panics in LogValue.
type PanicValuer struct{}

func (PanicValuer) LogValue() slog.Value { panic("boom in LogValue") }

// UnwrapPanics is an error whose Unwrap panics.
type UnwrapPanics struct{}

func (UnwrapPanics) Error() string { return "unwrap panics" }
func (UnwrapPanics) Unwrap() error { panic("boom in Unwrap") }

// StackPanics is an error whose Stack panics.
type StackPanics struct{}

func (StackPanics) Error() string { return "stack panics" }
func (StackPanics) Stack() []byte { panic("boom in Stack") }

// PanicWith is an error whose Error panics with V, for fuzzing the text of
// a panic: a handler writes "!PANIC: " and V.
type PanicWith struct{ V string }

func (p PanicWith) Error() string { panic(p.V) }
