// Package addrs holds the typed addresses every layer uses to name things:
// migration instances (migration.web["web-01"]) and plugin blocks
// (source.vsphere.dc1). It owns parsing and printing them and nothing else.
package addrs
