package sampler

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"
)

func FuzzDecode(f *testing.F) {
	rec := make([]byte, hdrSize+3*8+pyWords*8)
	binary.LittleEndian.PutUint32(rec[36:], uint32(KindCPU))
	binary.LittleEndian.PutUint16(rec[40:], 1) // kernel
	binary.LittleEndian.PutUint16(rec[42:], 2) // user
	binary.LittleEndian.PutUint16(rec[44:], 1) // python
	copy(rec[56:], "python3")
	f.Add(rec)
	f.Add(rec[:hdrSize])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		if need := hdrSize + 8*(len(s.Kernel)+len(s.User)+pyWords*len(s.Python)); need > len(b) {
			t.Fatalf("decoded %d bytes of stacks from a %d-byte record", need, len(b))
		}
	})
}

func TestDecode(t *testing.T) {
	rec := make([]byte, hdrSize+2*8+pyWords*8)
	le := binary.LittleEndian
	le.PutUint32(rec[24:], 42) // pid
	le.PutUint32(rec[28:], 43) // tid
	le.PutUint32(rec[36:], uint32(KindOffCPU))
	le.PutUint64(rec[8:], 5000) // value
	le.PutUint16(rec[40:], 1)
	le.PutUint16(rec[42:], 1)
	le.PutUint16(rec[44:], 1)
	copy(rec[56:], "worker")
	le.PutUint64(rec[72:], 0x7f0012345670) // addr
	le.PutUint64(rec[80:], 1000)           // size
	le.PutUint64(rec[hdrSize:], 0xffffffff81000000)
	le.PutUint64(rec[hdrSize+8:], 0x401000)
	le.PutUint64(rec[hdrSize+16:], 0x7f00dead0000)
	le.PutUint64(rec[hdrSize+24:], 0x1234)
	le.PutUint64(rec[hdrSize+32:], 10)
	s, err := Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != 42 || s.TID != 43 || s.Kind != KindOffCPU || s.Value != 5000 || s.Comm != "worker" {
		t.Errorf("header: %+v", s)
	}
	if s.Addr != 0x7f0012345670 || s.Size != 1000 {
		t.Errorf("addr, size: %#x %d", s.Addr, s.Size)
	}
	if got := int(unsafe.Sizeof(profileSampleHdr{})); got != hdrSize {
		t.Errorf("struct sample_hdr is %d bytes, Decode reads %d", got, hdrSize)
	}
	if len(s.Kernel) != 1 || s.Kernel[0] != 0xffffffff81000000 || len(s.User) != 1 || s.User[0] != 0x401000 {
		t.Errorf("stacks: %x %x", s.Kernel, s.User)
	}
	if len(s.Python) != 1 || s.Python[0].Code != 0x7f00dead0000 || s.Python[0].Check != 0x1234 || s.Python[0].Instr != 10 {
		t.Errorf("python: %+v", s.Python)
	}
	if _, err := Decode(rec[:hdrSize+8]); err == nil {
		t.Error("a record shorter than its header says was accepted")
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-1\n", "0,2-3,7", "", "5-2", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := ParseCPUList(s)
		if err == nil && len(cpus) == 0 {
			t.Fatal("no CPUs and no error")
		}
	})
}

func TestNextPoll(t *testing.T) {
	tests := []struct {
		last    time.Duration
		hurried bool
		want    time.Duration
	}{
		{0, false, pollMin},
		{0, true, pollMin},
		{pollMin, false, 2 * pollMin},
		{pollMax / 2, false, pollMax},
		{pollMax, false, pollMax},
		{pollMax, true, pollMin},
	}
	for _, tt := range tests {
		if got := nextPoll(tt.last, tt.hurried); got != tt.want {
			t.Errorf("nextPoll(%v, %v) = %v, want %v", tt.last, tt.hurried, got, tt.want)
		}
	}
}

func TestDefaultRingBytes(t *testing.T) {
	for _, tt := range []struct{ cpus, want int }{
		{1, 512 << 10}, {2, 512 << 10}, {4, 512 << 10}, {5, 1 << 20}, {16, 2 << 20}, {64, 8 << 20}, {1024, 8 << 20},
	} {
		if got := DefaultRingBytes(tt.cpus); got != tt.want {
			t.Errorf("DefaultRingBytes(%d) = %d, want %d", tt.cpus, got, tt.want)
		}
	}
}
