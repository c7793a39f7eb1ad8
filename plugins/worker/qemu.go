package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// qemuFormat maps a manifest format to qemu-img's driver name.
func qemuFormat(f string) string {
	if f == "vhd" {
		return "vpc"
	}
	return f
}

// qemuImg runs qemu-img in a process group of its own. When ctx ends (the
// job was cancelled, or its lease lost) the whole group is SIGKILLed at
// once, a wrapper's children included; the child is also killed if the
// worker dies (Pdeathsig). Either way no conversion runs on to race the
// worker that takes the job back.
func (w *Worker) qemuImg(ctx context.Context, args ...string) ([]byte, error) {
	var stdout bytes.Buffer
	err := w.qemuImgTo(ctx, &stdout, args...)
	return stdout.Bytes(), err
}

// qemuImgTo is qemuImg with its standard output written to stdout (which
// an error message quotes only when it is a buffer: convert -p writes
// progress records there).
func (w *Worker) qemuImgTo(ctx context.Context, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, w.cfg.QemuImg, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second // output pipes held open by an orphan
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		msg := strings.TrimSpace(stderr.String())
		if b, ok := stdout.(*bytes.Buffer); ok && msg == "" {
			msg = strings.TrimSpace(b.String())
		}
		return fmt.Errorf("qemu-img %s: %w: %s", args[0], err, msg)
	}
	return nil
}

// imageInfo is the part of `qemu-img info --output=json` the worker needs
// to keep reads inside the input roots.
type imageInfo struct {
	VirtualSize     int64  `json:"virtual-size"`
	BackingFilename string `json:"backing-filename"`
	FullBackingFile string `json:"full-backing-filename"`
	FormatSpecific  struct {
		Data struct {
			Extents []struct {
				Filename string `json:"filename"`
			} `json:"extents"`
		} `json:"data"`
	} `json:"format-specific"`
}

func (w *Worker) info(ctx context.Context, path, format string) (imageInfo, error) {
	out, err := w.qemuImg(ctx, "info", "--output=json", "-f", qemuFormat(format), path)
	if err != nil {
		return imageInfo{}, err
	}
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return imageInfo{}, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info, nil
}

// checkReferences refuses an image that would make qemu-img read another
// file: a backing file, or a VMDK extent, outside the input roots.
func (w *Worker) checkReferences(info imageInfo, path string) error {
	if info.BackingFilename != "" || info.FullBackingFile != "" {
		return fmt.Errorf("input %s has a backing file (%s): refused, convert a standalone image", path, info.BackingFilename)
	}
	for _, e := range info.FormatSpecific.Data.Extents {
		if e.Filename == "" || e.Filename == path {
			continue
		}
		if _, err := w.inputPath(e.Filename); err != nil {
			return fmt.Errorf("input %s extent: %w", path, err)
		}
	}
	return nil
}
