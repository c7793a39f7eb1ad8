package main

import (
	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/files"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm"
	"github.com/hypersdk/hyperagent/plugins/libvirt"
	"github.com/hypersdk/hyperagent/plugins/vsphere"
)

// builtinRegistry holds every plugin this build has.
func builtinRegistry() *plugins.Registry {
	return plugins.NewRegistry(
		vsphere.Factory(),
		files.Factory(),
		hyper2kvm.Factory(),
		libvirt.Factory(),
	)
}
