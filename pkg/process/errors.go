package process

import "fmt"

// ParseError is a malformed line in a /proc file.
type ParseError struct {
	File string // what was being parsed: "maps", "kallsyms", "status", "stat"
	Line int    // 1-based line number, 0 when the file is a single record
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("parse %s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("parse %s: line %d: %s", e.File, e.Line, e.Msg)
}
