package main

import "sort"

// The bench reports medians with their spread: on this machine identical
// runs differ by ±15–30 %, so a mean would hide how far apart they are.

func sorted(xs []float64) []float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s
}

func median(xs []float64) float64 {
	s := sorted(xs)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// spread is the smallest and the largest of xs.
func spread(xs []float64) (lo, hi float64) {
	s := sorted(xs)
	if len(s) == 0 {
		return 0, 0
	}
	return s[0], s[len(s)-1]
}

// quartiles are the 25th and 75th percentiles of xs, interpolated.
func quartiles(xs []float64) (q1, q3 float64) {
	return percentile(xs, 0.25), percentile(xs, 0.75)
}

func percentile(xs []float64, p float64) float64 {
	s := sorted(xs)
	if len(s) == 0 {
		return 0
	}
	pos := p * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}
