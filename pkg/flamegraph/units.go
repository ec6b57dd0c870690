package flamegraph

import (
	"fmt"
	"strconv"
)

// FormatValue prints v in unit for people: nanoseconds as ns, µs, ms or s,
// bytes as B, KiB, MiB or GiB, counts as "N samples".
func FormatValue(v int64, unit string) string {
	f := float64(v)
	switch unit {
	case "nanoseconds":
		switch {
		case v < 1e3:
			return strconv.FormatInt(v, 10) + " ns"
		case v < 1e6:
			return fmt.Sprintf("%.2f µs", f/1e3)
		case v < 1e9:
			return fmt.Sprintf("%.2f ms", f/1e6)
		}
		return fmt.Sprintf("%.2f s", f/1e9)
	case "bytes":
		switch {
		case v < 1<<10:
			return strconv.FormatInt(v, 10) + " B"
		case v < 1<<20:
			return fmt.Sprintf("%.2f KiB", f/(1<<10))
		case v < 1<<30:
			return fmt.Sprintf("%.2f MiB", f/(1<<20))
		}
		return fmt.Sprintf("%.2f GiB", f/(1<<30))
	case "count", "", "samples":
		if v == 1 {
			return "1 sample"
		}
		return strconv.FormatInt(v, 10) + " samples"
	}
	return strconv.FormatInt(v, 10) + " " + unit
}

// percent prints part/whole as "12.34%".
func percent(part, whole int64) string {
	if whole == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(part)/float64(whole))
}
