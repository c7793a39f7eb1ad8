package vsphere

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// defaultShutdownTimeout applies when the export block sets none.
const defaultShutdownTimeout = 5 * time.Minute

// powerOff asks the guest to shut down and waits up to timeout for it, then
// powers the VM off hard. A guest without VMware Tools refuses the shutdown
// at once (a vSphere fault), which goes straight to the hard power-off; a
// request that got no answer is returned for a retry, never taken for a
// refusal.
func (s *Source) powerOff(ctx context.Context, c *vim25.Client, ref moref, name string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	vm := object.NewVirtualMachine(c, ref)
	if err := vm.ShutdownGuest(ctx); err != nil {
		if ctx.Err() != nil { // the request may have reached vSphere
			return s.cancelledShutdown(ctx, name)
		}
		if faultOf(err) == nil {
			return fmt.Errorf("ask the guest of %s to shut down: %w", name, err)
		}
		s.log.Info("guest shutdown refused; powering off", "vm", name, "error", err)
	} else {
		err := s.poll(ctx, "guest shutdown of "+name, timeout, func(ctx context.Context) (bool, error) {
			st, err := vm.PowerState(ctx)
			return st == types.VirtualMachinePowerStatePoweredOff, err
		})
		if err == nil {
			s.log.Info("guest shut down", "vm", name)
			return nil
		}
		if ctx.Err() != nil {
			return s.cancelledShutdown(ctx, name)
		}
		s.log.Info("guest did not shut down in time; powering off", "vm", name, "timeout", timeout, "error", err)
	}
	t, err := vm.PowerOff(ctx)
	if err == nil {
		err = s.waitTask(ctx, c, t, "power-off of "+name, s.timing.wait)
	}
	if ctx.Err() != nil {
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
// own deadline, since the export's context is often the reason for the
// failure: a short one once the export was cancelled (whoever cancelled
// wants control back within seconds), a longer one otherwise.
func (s *Source) restorePower(ctx context.Context, c *vim25.Client, ref moref, name string) error {
	d := s.timing.restore
	if ctx.Err() != nil {
		d = s.timing.cleanup
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	vm := object.NewVirtualMachine(c, ref)
	t, err := vm.PowerOn(ctx)
	if err != nil {
		return fmt.Errorf("restore power of %s: %w", name, err)
	}
	if err := s.waitTask(ctx, c, t, "power-on of "+name, d); err != nil {
		return fmt.Errorf("restore power of %s: %w (the power-on was requested and may still complete)", name, err)
	}
	s.log.Info("power restored after failed export", "vm", name)
	return nil
}

// waitTask polls a task until it ends, for at most within. A task that
// fails returns its fault (a *task.Error), as govmomi's Task.Wait does.
func (s *Source) waitTask(ctx context.Context, c *vim25.Client, t *object.Task, what string, within time.Duration) error {
	pc := property.DefaultCollector(c)
	return s.poll(ctx, what, within, func(ctx context.Context) (bool, error) {
		var mt mo.Task
		if err := pc.RetrieveOne(ctx, t.Reference(), []string{"info"}, &mt); err != nil {
			return false, err
		}
		switch mt.Info.State {
		case types.TaskInfoStateSuccess:
			return true, nil
		case types.TaskInfoStateError:
			if mt.Info.Error == nil {
				return true, errors.New("the task failed without saying why")
			}
			return true, &task.Error{LocalizedMethodFault: mt.Info.Error, Description: mt.Info.Description}
		}
		return false, nil
	})
}

// errFindings is the error Export returns for a VM with error findings.
var errFindings = errors.New("pre-flight checks failed")
