package unwind

import (
	"errors"
	"fmt"
)

// ErrNoUnwindInfo is returned by Parse for a file with neither .eh_frame nor
// .debug_frame: callers fall back to frame pointers for it.
var ErrNoUnwindInfo = errors.New("no .eh_frame or .debug_frame")

// FormatError is malformed call frame information.
type FormatError struct {
	Off int // offset in the section
	Msg string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("offset %#x: %s", e.Off, e.Msg)
}
