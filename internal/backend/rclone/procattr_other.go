//go:build !linux

package rclone

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
