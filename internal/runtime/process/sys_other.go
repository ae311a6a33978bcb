//go:build !linux

package process

import (
	"errors"
	"os"
	"syscall"
)

const shimName = "omnisync-process-shim"

func supported() error { return errors.New("process runtime: only linux is supported") }

func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(int) {}

func shimArgs(Limits) []string { return nil }

func signalOf(*os.ProcessState, Limits) (signal, reason string) { return "", "" }
