package rclone

import "syscall"

// procAttr makes the kernel kill rclone when this process dies, so that a
// crashed einvault leaves no server behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
