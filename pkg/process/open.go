package process

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrFileMismatch means a file opened for a mapping is not the file mapped:
// its device or inode differ from the ones in /proc/PID/maps (the path now
// names another file, or the target sees another filesystem).
var ErrFileMismatch = errors.New("file is not the one mapped")

// OpenMapped opens the file behind mapping m of process pid, as the target
// sees it. It tries /proc/PID/map_files/START-END first (which needs
// CAP_SYS_ADMIN, or root, and works for deleted files too), then
// /proc/PID/root/PATH, and in both cases checks with fstat that the device
// and inode are the mapping's; a mismatch is an error wrapping
// ErrFileMismatch. The caller closes the file.
func OpenMapped(pid int, m Mapping) (*os.File, error) {
	if m.Anonymous() {
		return nil, fmt.Errorf("open mapping %#x-%#x of pid %d: no file backs it", m.Start, m.End, pid)
	}
	f, err := os.Open(mapFilesPath(pid, m))
	if err == nil {
		if err := checkMapped(f, m); err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s of pid %d: %w", m.Path, pid, err)
		}
		return f, nil
	}
	firstErr := err
	if m.Deleted() {
		return nil, fmt.Errorf("open deleted %s of pid %d: %w", m.Path, pid, firstErr)
	}
	f, err = os.Open(rootPath(pid, m))
	if err != nil {
		return nil, fmt.Errorf("open %s of pid %d: %w (and %w)", m.Path, pid, err, firstErr)
	}
	if err := checkMapped(f, m); err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s of pid %d: %w", m.Path, pid, err)
	}
	return f, nil
}

func mapFilesPath(pid int, m Mapping) string {
	return fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, m.Start, m.End)
}

func rootPath(pid int, m Mapping) string {
	return fmt.Sprintf("/proc/%d/root%s", pid, m.FilePath())
}

// fileStat is what identifies a file on disk without reading it.
type fileStat struct {
	Major, Minor uint32
	Inode        uint64
	Mtime        int64 // nanoseconds since the epoch
	Size         int64
}

func fromStat(st *unix.Stat_t) fileStat {
	return fileStat{
		Major: unix.Major(st.Dev),
		Minor: unix.Minor(st.Dev),
		Inode: st.Ino,
		Mtime: st.Mtim.Nano(),
		Size:  st.Size,
	}
}

func fstat(f *os.File) (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileStat{}, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	return fromStat(&st), nil
}

// statMapped stats the file behind m without opening it, through the same
// two paths as OpenMapped, and checks its identity.
func statMapped(pid int, m Mapping) (fileStat, error) {
	var st unix.Stat_t
	err := unix.Stat(mapFilesPath(pid, m), &st)
	if err != nil && !m.Deleted() {
		err = unix.Stat(rootPath(pid, m), &st)
	}
	if err != nil {
		return fileStat{}, fmt.Errorf("stat %s of pid %d: %w", m.Path, pid, err)
	}
	fs := fromStat(&st)
	if err := sameFile(fs, m); err != nil {
		return fileStat{}, fmt.Errorf("stat %s of pid %d: %w", m.Path, pid, err)
	}
	return fs, nil
}

func checkMapped(f *os.File, m Mapping) error {
	fs, err := fstat(f)
	if err != nil {
		return err
	}
	return sameFile(fs, m)
}

func sameFile(fs fileStat, m Mapping) error {
	if fs.Major != m.Major || fs.Minor != m.Minor || fs.Inode != m.Inode {
		return fmt.Errorf("%w: device %d:%d inode %d, mapped %d:%d inode %d",
			ErrFileMismatch, fs.Major, fs.Minor, fs.Inode, m.Major, m.Minor, m.Inode)
	}
	return nil
}
