package python

import (
	"encoding/binary"
	"fmt"
	"io"
)

// glibcPthreadTID is the offset of the tid member of glibc's struct pthread
// on x86-64, the same from glibc 2.26 to 2.41 at least (checked here on
// Debian 12's 2.36 and sid's): a thread_id (pthread_t) is the address of
// that struct.
const glibcPthreadTID = 0x2d0

// PthreadTID reads the kernel thread id glibc keeps for the thread whose
// pthread_t is pthread: how a Thread.ThreadID is tied to its TID before 3.11,
// whose thread states have no native_thread_id. Callers must check the
// answer against the process's TIDs: under another C library it is noise.
func PthreadTID(mem io.ReaderAt, pthread uint64) (int, error) {
	var b [4]byte
	if err := readFull(mem, pthread+glibcPthreadTID, b[:]); err != nil {
		return 0, fmt.Errorf("read tid of thread %#x: %w", pthread, err)
	}
	return int(int32(binary.LittleEndian.Uint32(b[:]))), nil
}
