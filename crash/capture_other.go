//go:build !linux

package crash

// capture does nothing where it is not supported.
func capture(*Options) error { return ErrUnsupported }
