// Command hyperagent makes moving VMs from vSphere to KVM declarative. It
// parses arguments, picks a view (human or -json), calls the engine and
// turns the result into an exit code. Only main calls os.Exit.
package main
