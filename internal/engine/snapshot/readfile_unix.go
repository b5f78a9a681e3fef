//go:build linux || darwin

package snapshot

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// openForBackup opens a file a backup reads, without updating its access time where
// the system allows. It returns the bare descriptor: an *os.File tries to register a
// regular file with the network poller, which costs five system calls that fail or are
// undone (fcntl twice, epoll_ctl, fcntl twice) on every file, as many as reading a small
// file takes.
func openForBackup(path string) (io.ReadCloser, error) {
	fd, err := openRetry(path, syscall.O_RDONLY|syscall.O_CLOEXEC|openNoATime)
	if errors.Is(err, syscall.EPERM) && openNoATime != 0 {
		fd, err = openRetry(path, syscall.O_RDONLY|syscall.O_CLOEXEC) // O_NOATIME needs ownership or CAP_FOWNER
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &rawFile{fd: fd, path: path}, nil
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(path, flags, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// rawFile reads a file descriptor.
type rawFile struct {
	fd   int
	path string
}

func (f *rawFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Read(f.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: f.path, Err: err}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f *rawFile) Close() error {
	if err := syscall.Close(f.fd); err != nil {
		return &os.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}
