package ksym

import "strings"

// symbolName turns what bpf_snprintf's %ps printed into buf (returning
// n, the length with its NUL, or a negative error) into a name: "" when the
// print failed or found no symbol, which it shows as the address in hex.
// A name longer than buf is cut at buf's end. The padding before a
// function (__pfx_name, where call thunks may run) is named for the
// function, as pkg/process does with /proc/kallsyms.
func symbolName(buf []int8, n int64) string {
	if n <= 1 || len(buf) == 0 {
		return ""
	}
	end := int(min(n, int64(len(buf)))) - 1
	var sb strings.Builder
	sb.Grow(end)
	for _, c := range buf[:end] {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	s := sb.String()
	// No symbol starts with a digit: "0x..." is an address no symbol holds.
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return ""
	}
	return strings.TrimPrefix(s, "__pfx_")
}
