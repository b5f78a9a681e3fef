package jobimage

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SetPriority applies the configured CPU niceness and I/O scheduling class to this
// process, so a backup yields to the workload it runs beside. Lowering priority needs no
// capability; raising it (negative nice, realtime I/O) needs CAP_SYS_NICE / CAP_SYS_ADMIN,
// which the default host pod does not have: the error says so.
func SetPriority(nice *int, ioClass int, ioData *int) error {
	if nice != nil {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, *nice); err != nil {
			return fmt.Errorf("nice %d: %w (a negative value needs CAP_SYS_NICE)", *nice, err)
		}
	}
	if ioClass != 0 {
		data := 4 // the kernel's default best-effort level
		if ioData != nil {
			data = *ioData
		}
		if ioClass < 1 || ioClass > 3 || data < 0 || data > 7 {
			return fmt.Errorf("ionice class %d data %d: want class 1-3 and data 0-7", ioClass, data)
		}
		const whoProcess, classShift = 1, 13
		prio := ioClass<<classShift | data
		if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(prio)); errno != 0 {
			return fmt.Errorf("ionice class %d: %w (the realtime class needs CAP_SYS_ADMIN)", ioClass, errno)
		}
	}
	return nil
}
