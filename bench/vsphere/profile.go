package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// profiles are the pprof outputs a subcommand can write, named by flags.
type profiles struct {
	cpu, block, mutex string
}

func (p *profiles) flags(fs *flag.FlagSet) {
	fs.StringVar(&p.cpu, "cpuprofile", "", "write a CPU profile (pprof) of the run to this file")
	fs.StringVar(&p.block, "blockprofile", "", "write a blocking profile (pprof) of the run to this file")
	fs.StringVar(&p.mutex, "mutexprofile", "", "write a mutex contention profile (pprof) of the run to this file")
}

// start begins the profiles asked for; the returned function writes them.
func (p *profiles) start() (stop func() error, err error) {
	var cpu *os.File
	if p.cpu != "" {
		if cpu, err = os.Create(p.cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			_ = cpu.Close()
			return nil, err
		}
	}
	if p.block != "" {
		runtime.SetBlockProfileRate(1)
	}
	if p.mutex != "" {
		runtime.SetMutexProfileFraction(1)
	}
	return func() error {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				return err
			}
		}
		for name, file := range map[string]string{"block": p.block, "mutex": p.mutex} {
			if file == "" {
				continue
			}
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
				_ = f.Close()
				return fmt.Errorf("write %s profile: %w", name, err)
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
		return nil
	}, nil
}
