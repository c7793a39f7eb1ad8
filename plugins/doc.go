// Package plugins defines the roles the engine drives — Source (vSphere,
// pre-exported files), Converter (hyper2kvm's watch directory, the built-in
// worker) and Target (libvirt) — as request/response interfaces, with the
// registry from block type to factory and the errors they share. The
// implementations live in subpackages.
//
// Neither this package nor its subpackages import the engine (reconcile),
// the agent or the CLI: the engine sees plugins only through these
// interfaces, so its tests use the fakes in plugintest.
package plugins
