// Package plugintest has hand-written in-memory fakes of the plugin roles,
// for the engine's tests. They record every call so tests can assert that
// an export or a submission happened exactly once. WriteSparseRaw makes a
// disk image for the tests that run real qemu-img.
package plugintest
