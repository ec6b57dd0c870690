package main

import (
	"fmt"
	"os/exec"
	"strings"
)

// flamegraphBench runs the 100,000-stack SVG benchmark of pkg/flamegraph.
func flamegraphBench() (string, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkSVG100kStacks", "-benchtime", "5x", "./pkg/flamegraph")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, b)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "BenchmarkSVG100kStacks") {
			f := strings.Fields(line)
			if len(f) >= 4 {
				var ns float64
				fmt.Sscan(f[2], &ns)
				return fmt.Sprintf("%.0f ms", ns/1e6), nil
			}
		}
	}
	return "", fmt.Errorf("no benchmark line in: %s", b)
}
