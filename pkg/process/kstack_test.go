package process

import (
	"reflect"
	"testing"
)

func TestParseKernelStack(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"[<0>] do_nanosleep+0x6f/0x1a0\n[<0>] hrtimer_nanosleep+0xa5/0x150\n", []string{"do_nanosleep", "hrtimer_nanosleep"}, false},
		{"[<0>] pipe_read+0x31f/0x490 [mod]\n\n", []string{"pipe_read"}, false},
		{"", nil, false},
		{"do_nanosleep\n", nil, true},
		{"[<0>] \n", nil, true},
	} {
		got, err := ParseKernelStack([]byte(tc.in))
		if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseKernelStack(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
