package vsphere

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// defaultShutdownTimeout applies when the export block sets none.
const defaultShutdownTimeout = 5 * time.Minute

// powerOff asks the guest to shut down and waits up to timeout for it, then
// powers the VM off hard. A guest without VMware Tools refuses the shutdown
// at once, which goes straight to the hard power-off.
func (s *Source) powerOff(ctx context.Context, c *vim25.Client, ref moref, name string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	vm := object.NewVirtualMachine(c, ref)
	if err := vm.ShutdownGuest(ctx); err != nil {
		if ctx.Err() != nil { // the request may have reached vSphere
			return s.cancelledShutdown(ctx, name)
		}
		s.log.Info("guest shutdown refused; powering off", "vm", name, "error", err)
	} else {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err := vm.WaitForPowerState(wctx, types.VirtualMachinePowerStatePoweredOff)
		// govmomi's property.Wait returns nil when its context is
		// cancelled: only an unexpired wctx means the guest went down.
		timedOut := wctx.Err() != nil
		cancel()
		if err == nil && !timedOut {
			s.log.Info("guest shut down", "vm", name)
			return nil
		}
		if ctx.Err() != nil {
			return s.cancelledShutdown(ctx, name)
		}
		s.log.Info("guest did not shut down in time; powering off", "vm", name, "timeout", timeout)
	}
	task, err := vm.PowerOff(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if ctx.Err() != nil { // task.Wait may return nil when cancelled
		return fmt.Errorf("power off %s: %w (the power-off may still complete)", name, ctx.Err())
	}
	if err != nil {
		// The guest may have finished shutting down meanwhile.
		if st, serr := vm.PowerState(ctx); serr == nil && st == types.VirtualMachinePowerStatePoweredOff {
			return nil
		}
		return fmt.Errorf("power off %s: %w", name, err)
	}
	s.log.Info("powered off", "vm", name)
	return nil
}

// cancelledShutdown reports a cancellation after a guest shutdown was
// requested: vSphere cannot take that request back.
func (s *Source) cancelledShutdown(ctx context.Context, name string) error {
	s.log.Warn("export cancelled during a guest shutdown; the VM may still power off", "vm", name)
	return fmt.Errorf("%w (the guest of %s was asked to shut down and may still power off)", ctx.Err(), name)
}

// restorePower powers the VM back on after a failed export. It runs on its
// own deadline: the export's context is often the reason for the failure.
func (s *Source) restorePower(ctx context.Context, c *vim25.Client, ref moref, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	vm := object.NewVirtualMachine(c, ref)
	task, err := vm.PowerOn(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("restore power of %s: %w", name, err)
	}
	s.log.Info("power restored after failed export", "vm", name)
	return nil
}

// errFindings is the error Export returns for a VM with error findings.
var errFindings = errors.New("pre-flight checks failed")
