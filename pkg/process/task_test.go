package process

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const sampleStatus = "Name:\tgunicorn: work\\\\er\n" +
	"Umask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4250\nPPid:\t1\n" +
	"TracerPid:\t0\nUid:\t0\t0\t0\t0\nNStgid:\t4242\t17\nNSpid:\t4250\t25\nNSpgid:\t4242\t17\n"

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Status
		err      bool
	}{
		{"container", sampleStatus, Status{Name: `gunicorn: work\er`, Tgid: 4242, Pid: 4250, PPid: 1, NSpid: []int{4250, 25}, NStgid: []int{4242, 17}}, false},
		{"host", "Name:\tpython3\nTgid:\t10\nPid:\t10\nNStgid:\t10\nNSpid:\t10\n", Status{Name: "python3", Tgid: 10, Pid: 10, NSpid: []int{10}, NStgid: []int{10}}, false},
		{"no tgid", "Name:\tx\nPid:\t3\n", Status{}, true},
		{"bad tgid", "Tgid:\tabc\n", Status{}, true},
		{"bad nspid", "Tgid:\t1\nNSpid:\t1 x\n", Status{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatus(strings.NewReader(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tail := " 1 100 100 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n"
	for _, tc := range []struct {
		name, in string
		want     Stat
		err      bool
	}{
		{"plain", "123 (python3) S" + tail, Stat{Pid: 123, Comm: "python3", State: 'S', PPid: 1, StartTime: 987654, Threads: 1}, false},
		{"spaces and parens", "123 (a) b (c) ) R" + tail, Stat{Pid: 123, Comm: "a) b (c) ", State: 'R', PPid: 1, StartTime: 987654, Threads: 1}, false},
		{"empty comm", "7 () Z" + tail, Stat{Pid: 7, Comm: "", State: 'Z', PPid: 1, StartTime: 987654, Threads: 1}, false},
		{"no comm", "123 python3 S" + tail, Stat{}, true},
		{"short", "123 (x) S 1 2 3\n", Stat{}, true},
		{"bad pid", "x (y) S" + tail, Stat{}, true},
		{"bad start", "1 (y) S 1 100 100 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 -5 1\n", Stat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSelfTask(t *testing.T) {
	pid := os.Getpid()
	tids, err := Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tids, pid) {
		t.Errorf("Threads(%d) = %v, want the main thread in it", pid, tids)
	}
	comm, err := Comm(pid, pid)
	if err != nil || comm == "" || strings.HasSuffix(comm, "\n") {
		t.Errorf("Comm = %q, %v", comm, err)
	}
	st, err := TaskStatus(pid, pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tgid != pid || st.Pid != pid || len(st.NSpid) == 0 || st.Name != comm {
		t.Errorf("TaskStatus = %+v, want Tgid %d and Name %q", st, pid, comm)
	}
	start, err := StartTime(pid)
	if err != nil || start == 0 {
		t.Errorf("StartTime = %d, %v", start, err)
	}
	if !Exists(pid) {
		t.Errorf("Exists(self) = false")
	}
	if Exists(0) || Exists(1<<30) {
		t.Errorf("Exists of an impossible pid = true")
	}
	if _, err := StartTime(1 << 30); err == nil {
		t.Errorf("StartTime of an impossible pid: no error")
	}
}
