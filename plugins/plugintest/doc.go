// Package plugintest has hand-written in-memory fakes of the plugin roles,
// for the engine's tests. They record every call so tests can assert that
// an export or a submission happened exactly once.
package plugintest
