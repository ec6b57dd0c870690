package container

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Cgroup is one line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH". The cgroup
// v2 line is "0::PATH".
type Cgroup struct {
	ID          int
	Controllers []string // empty for cgroup v2
	Path        string
}

// maxCgroupLines bounds what ParseCgroups keeps: a kernel has a dozen or so
// hierarchies; a file with more lines is not a cgroup file.
const maxCgroupLines = 256

// ParseCgroups parses the /proc/PID/cgroup format. Lines that are not
// "ID:CONTROLLERS:PATH" are an error naming the line.
func ParseCgroups(r io.Reader) ([]Cgroup, error) {
	var out []Cgroup
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			continue
		}
		id, rest, ok1 := strings.Cut(text, ":")
		ctrl, path, ok2 := strings.Cut(rest, ":")
		n, ok3 := parseID(id)
		if !ok1 || !ok2 || !ok3 || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("parse cgroup line %d %.80q: want ID:CONTROLLERS:/PATH", line, text)
		}
		if len(out) == maxCgroupLines {
			return nil, fmt.Errorf("parse cgroups: more than %d lines", maxCgroupLines)
		}
		c := Cgroup{ID: n, Path: path}
		if ctrl != "" {
			c.Controllers = strings.Split(ctrl, ",")
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse cgroups: %w", err)
	}
	return out, nil
}

// parseID reads a hierarchy ID: a small non-negative decimal.
func parseID(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
