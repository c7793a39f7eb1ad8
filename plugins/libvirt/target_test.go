package libvirt

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/go-cmp/cmp"
	"libvirt.org/go/libvirtxml"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

const (
	addr     = `migration.web["web-01"]`
	campaign = "3f1c9a2e-0000-4000-8000-000000000001"
)

var us = plugins.Owner{Campaign: campaign, Address: addr}

func TestDefineObserveRoundTrip(t *testing.T) {
	cfg := testConfig(t)
	tg := newTestTarget(t, cfg)
	ctx := ctxT(t)
	name := uniqueName("web")
	t.Cleanup(func() { undefine(t, tg, name) })
	// The boot disk is on storage_dir's filesystem and is renamed; the
	// data disk is on tmpfs and is copied and verified.
	shm := shmDir(t)
	if sameFS(t, shm, cfg.StorageDir) {
		t.Fatalf("/dev/shm and %s share a filesystem; this test needs two", cfg.StorageDir)
	}
	data := makeDisk(t, shm, "disk-1", "raw", 1)
	boot := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	bootIno := inode(t, boot.Path)

	resp, err := tg.Define(ctx, plugins.DefineRequest{
		Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name),
		Outputs: []plugins.Output{data, boot}, // boot order must win over input order
	})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Domain
	bootDst := filepath.Join(cfg.StorageDir, name+"-disk-0.qcow2")
	dataDst := filepath.Join(cfg.StorageDir, name+"-disk-1.raw")
	wantDisks := []plugins.File{
		{Path: bootDst, Size: boot.Size, SHA256: boot.SHA256},
		{Path: dataDst, Size: data.Size, SHA256: data.SHA256},
	}
	if diff := cmp.Diff(wantDisks, got.Disks); diff != "" {
		t.Errorf("disks (-want +got):\n%s", diff)
	}
	if exists(boot.Path) || exists(data.Path) || !exists(bootDst) || !exists(dataDst) {
		t.Errorf("disks were not moved into storage_dir")
	}
	if got := inode(t, bootDst); got != bootIno {
		t.Errorf("boot disk inode %d -> %d: copied, not renamed on one filesystem", bootIno, got)
	}
	if sum, _ := hashFile(t, dataDst); sum != data.SHA256 {
		t.Errorf("data disk copied across filesystems: sha256 %s, want %s", sum, data.SHA256)
	}
	if got.Name != name || got.UUID == "" || !strings.HasPrefix(got.Digest, "sha256:") {
		t.Errorf("defined domain = %+v", got)
	}

	d := domainXML(t, tg, name)
	if managedBy(d) != us {
		t.Errorf("metadata owner = %+v, want %+v", managedBy(d), us)
	}
	type diskView struct{ Dev, Bus, Type, File string }
	var disks []diskView
	var orders []uint
	for _, dk := range d.Devices.Disks {
		disks = append(disks, diskView{dk.Target.Dev, dk.Target.Bus, dk.Driver.Type, dk.Source.File.File})
		orders = append(orders, dk.Boot.Order)
	}
	wantView := []diskView{{"vda", "virtio", "qcow2", bootDst}, {"vdb", "virtio", "raw", dataDst}}
	if diff := cmp.Diff(wantView, disks); diff != "" {
		t.Errorf("disks in XML (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint{1, 2}, orders); diff != "" {
		t.Errorf("boot order (-want +got):\n%s", diff)
	}
	type nicView struct{ MAC, Network, Bridge, Model string }
	var nics []nicView
	for _, n := range d.Devices.Interfaces {
		v := nicView{MAC: n.MAC.Address, Model: n.Model.Type}
		if n.Source.Network != nil {
			v.Network = n.Source.Network.Network
		}
		if n.Source.Bridge != nil {
			v.Bridge = n.Source.Bridge.Bridge
		}
		nics = append(nics, v)
	}
	wantNICs := []nicView{{"00:50:56:01:02:03", "default", "", "virtio"}, {"00:50:56:0a:0b:0c", "", "br-dmz", "virtio"}}
	if diff := cmp.Diff(wantNICs, nics); diff != "" {
		t.Errorf("NICs (-want +got):\n%s", diff)
	}
	if d.Memory.Value != 1024*1024 || d.VCPU.Value != 2 || d.OS.Loader != nil {
		t.Errorf("memory %d %s, vcpus %d, loader %+v", d.Memory.Value, d.Memory.Unit, d.VCPU.Value, d.OS.Loader)
	}

	obs, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{
		{Address: addr, Campaign: campaign, Name: name, Networks: []string{"VM Network", "DMZ"}},
		{Address: "migration.absent", Name: uniqueName("absent")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]plugins.DomainObservation{
		addr:               {Exists: true, UUID: got.UUID, Digest: got.Digest, Owner: us, Ours: true},
		"migration.absent": {},
	}
	if diff := cmp.Diff(want, obs.Domains); diff != "" {
		t.Errorf("observe (-want +got):\n%s", diff)
	}
}

func TestRedefineOwnDomainUpdates(t *testing.T) {
	cfg := testConfig(t)
	tg := newTestTarget(t, cfg)
	ctx := ctxT(t)
	name := uniqueName("upd")
	t.Cleanup(func() { undefine(t, tg, name) })
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	req := plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name), Outputs: []plugins.Output{disk}}
	first, err := tg.Define(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// A retry after a crash: the disk was moved already, the domain exists.
	req.Domain = schema.DomainSettings{MemoryMiB: 2048}
	second, err := tg.Define(ctx, req)
	if err != nil {
		t.Fatalf("redefining our own domain: %v", err)
	}
	if second.Domain.UUID != first.Domain.UUID {
		t.Errorf("UUID changed: %s -> %s", first.Domain.UUID, second.Domain.UUID)
	}
	if second.Domain.Digest == first.Domain.Digest {
		t.Errorf("digest did not change with the memory")
	}
	if d := domainXML(t, tg, name); d.Memory.Value != 2048*1024 {
		t.Errorf("memory = %d KiB, want %d", d.Memory.Value, 2048*1024)
	}
}

func TestDriftAfterOutOfBandChange(t *testing.T) {
	tg := newTestTarget(t, testConfig(t))
	ctx := ctxT(t)
	name := uniqueName("drift")
	t.Cleanup(func() { undefine(t, tg, name) })
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	def, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name), Outputs: []plugins.Output{disk}})
	if err != nil {
		t.Fatal(err)
	}
	observe := func() plugins.DomainObservation {
		t.Helper()
		r, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: name}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Domains[addr]
	}
	if o := observe(); o.Digest != def.Domain.Digest {
		t.Fatalf("digest before any change = %s, want %s", o.Digest, def.Domain.Digest)
	}
	d := domainXML(t, tg, name)
	d.Memory.Value *= 2
	d.CurrentMemory = nil
	redefine(t, tg, d)
	o := observe()
	if o.Digest == def.Domain.Digest {
		t.Errorf("digest unchanged after the memory was doubled out of band")
	}
	if !o.Exists || o.Owner != us || !o.Ours || o.UUID != def.Domain.UUID {
		t.Errorf("observation after drift = %+v", o)
	}
}

func TestForeignDomainRefused(t *testing.T) {
	tests := map[string]plugins.Owner{
		"no metadata":       {},
		"another migration": {Campaign: campaign, Address: `migration.other`},
		// Another repo sharing this libvirt, with a migration of the same
		// address: the domain is theirs.
		"another campaign": {Campaign: "9d0b7c11-0000-4000-8000-000000000002", Address: addr},
		// Defined before owners named a campaign, and not the UUID this
		// migration recorded.
		"no campaign, other UUID": {Address: addr},
	}
	for tname, owner := range tests {
		t.Run(tname, func(t *testing.T) {
			cfg := testConfig(t)
			tg := newTestTarget(t, cfg)
			ctx := ctxT(t)
			name := uniqueName("foreign")
			t.Cleanup(func() { undefine(t, tg, name) })
			foreign := &libvirtxml.Domain{
				Type: "test", Name: name,
				Memory: &libvirtxml.DomainMemory{Value: 256, Unit: "MiB"},
				VCPU:   &libvirtxml.DomainVCPU{Value: 1},
				OS:     &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Type: "hvm"}},
			}
			if owner.Address != "" {
				foreign.Metadata = &libvirtxml.DomainMetadata{XML: metadataXML(owner)}
			}
			redefine(t, tg, foreign)
			before := domainXML(t, tg, name)

			disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
			_, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name), Outputs: []plugins.Output{disk}})
			if err == nil || !plugins.IsTerminal(err) || !strings.Contains(err.Error(), "never overwritten") || strings.HasPrefix(err.Error(), "define ") {
				t.Fatalf("Define over a foreign domain: err = %v, want a terminal refusal without the engine's prefix", err)
			}
			if diff := cmp.Diff(before, domainXML(t, tg, name)); diff != "" {
				t.Errorf("foreign domain changed (-before +after):\n%s", diff)
			}
			if !exists(disk.Path) {
				t.Errorf("the disk was moved although the definition was refused")
			}
			// Had the domain appeared after Define's check, libvirt itself
			// refuses our definition: a new domain carries a UUID of ours.
			spec := domainSpec{Name: name, UUID: "6e0a2a4e-8a0e-4c5e-9d55-3c1f8f7a1b2c", Type: "test", Owner: us,
				MemoryMiB: 256, VCPUs: 1, Disks: []placedDisk{{Path: disk.Path, Format: "qcow2"}}}
			dom, err := buildDomain(spec)
			if err != nil {
				t.Fatal(err)
			}
			x, _ := dom.Marshal()
			err = tg.conn.do(ctx, func(l *golibvirt.Libvirt) error {
				_, err := l.DomainDefineXMLFlags(x, golibvirt.DomainDefineValidate)
				return err
			})
			if err == nil {
				t.Errorf("libvirt accepted a definition with another UUID over an existing domain")
			}
			r, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: name}}})
			if err != nil {
				t.Fatal(err)
			}
			o := r.Domains[addr]
			if !o.Exists || o.Owner != owner || o.Ours || len(o.Findings) != 1 || o.Findings[0].Severity != plugins.SeverityError {
				t.Errorf("observation = %+v, want one error finding and ManagedBy %q", o, owner)
			}
		})
	}
}

// TestTwoCampaignsOneName: two repositories (campaigns) share this
// libvirt and both migrate a VM at the same address to the same domain
// name. The second never takes or changes the first's disk or domain:
// neither while the first is half done (its disk placed, its domain not
// yet defined) nor once its domain exists.
func TestTwoCampaignsOneName(t *testing.T) {
	cfg := testConfig(t)
	tg := newTestTarget(t, cfg)
	ctx := ctxT(t)
	name := uniqueName("shared")
	t.Cleanup(func() { undefine(t, tg, name) })
	const other = "9d0b7c11-0000-4000-8000-000000000002"
	placed := filepath.Join(cfg.StorageDir, name+"-disk-0.qcow2")
	reqA := plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name),
		Outputs: []plugins.Output{makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)}}
	diskB := makeDiskSized(t, t.TempDir(), "disk-0", "qcow2", 0, "32M")
	reqB := plugins.DefineRequest{Address: addr, Campaign: other, Name: name, Facts: baseFacts(name),
		Outputs: []plugins.Output{diskB}}

	// Campaign A's first attempt places its disk and stops before the
	// domain is defined (memory unknown).
	half := reqA
	half.Facts.MemoryMiB = 0
	if _, err := tg.Define(ctx, half); !plugins.IsTerminal(err) || !exists(placed) {
		t.Fatalf("first attempt: err = %v, disk placed %v; want a terminal failure after placing", err, exists(placed))
	}
	sumA, _ := hashFile(t, placed)
	inoA := inode(t, placed)
	checkA := func(when string) {
		t.Helper()
		if !exists(placed) {
			t.Fatalf("%s: campaign A's disk %s is gone", when, placed)
		}
		if sum, _ := hashFile(t, placed); sum != sumA || inode(t, placed) != inoA {
			t.Errorf("%s: campaign A's disk %s was replaced or changed", when, placed)
		}
		if sum, _ := hashFile(t, diskB.Path); sum != diskB.SHA256 {
			t.Errorf("%s: campaign B's converted disk %s was moved or changed", when, diskB.Path)
		}
	}

	_, err := tg.Define(ctx, reqB)
	if !plugins.IsTerminal(err) || !strings.Contains(err.Error(), placed) || !strings.Contains(err.Error(), diskB.Path) {
		t.Errorf("campaign B over A's placed disk: err = %v, want terminal naming %s and %s", err, placed, diskB.Path)
	}
	checkA("B refused while A is half done")
	if _, found, err := tg.lookupDomain(ctx, name); err != nil || found {
		t.Errorf("domain %s defined (%v, %v) although B was refused", name, found, err)
	}

	// A's retry adopts its own disk and defines the domain.
	def, err := tg.Define(ctx, reqA)
	if err != nil {
		t.Fatalf("campaign A's retry: %v", err)
	}
	if want := []plugins.File{{Path: placed, Size: reqA.Outputs[0].Size, SHA256: sumA}}; !cmp.Equal(want, def.Domain.Disks) {
		t.Errorf("A's disks = %+v, want %+v", def.Domain.Disks, want)
	}
	checkA("A's retry")
	before := domainXML(t, tg, name)

	_, err = tg.Define(ctx, reqB)
	if !plugins.IsTerminal(err) || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("campaign B over A's domain: err = %v, want a terminal refusal", err)
	}
	if diff := cmp.Diff(before, domainXML(t, tg, name)); diff != "" {
		t.Errorf("campaign A's domain changed (-before +after):\n%s", diff)
	}
	checkA("B refused by A's domain")
}

func TestUEFIDomain(t *testing.T) {
	tests := map[string]struct {
		secure           bool
		loader, template string
		secureAttr       string
	}{
		"uefi":        {false, defaultUEFILoader, defaultUEFIVars, "no"},
		"secure boot": {true, defaultUEFISecureLoader, defaultUEFISecureVars, "yes"},
	}
	for tname, tc := range tests {
		t.Run(tname, func(t *testing.T) {
			tg := newTestTarget(t, testConfig(t))
			ctx := ctxT(t)
			name := uniqueName("uefi")
			t.Cleanup(func() { undefine(t, tg, name) })
			facts := baseFacts(name)
			facts.Firmware, facts.SecureBoot = "uefi", tc.secure
			disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
			if _, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: facts, Outputs: []plugins.Output{disk}}); err != nil {
				t.Fatal(err)
			}
			d := domainXML(t, tg, name)
			if d.OS.Loader == nil || d.OS.Loader.Path != tc.loader || d.OS.Loader.Type != "pflash" || d.OS.Loader.Readonly != "yes" || d.OS.Loader.Secure != tc.secureAttr {
				t.Errorf("loader = %+v", d.OS.Loader)
			}
			wantNV := filepath.Join(defaultNVRAMDir, name+"_VARS.fd")
			if d.OS.NVRam == nil || d.OS.NVRam.NVRam != wantNV || d.OS.NVRam.Template != tc.template {
				t.Errorf("nvram = %+v, want %s from %s", d.OS.NVRam, wantNV, tc.template)
			}
			if (d.Features.SMM != nil) != tc.secure {
				t.Errorf("smm = %+v, secure boot %v", d.Features.SMM, tc.secure)
			}
		})
	}
}

func TestMissingDiskDetected(t *testing.T) {
	tg := newTestTarget(t, testConfig(t))
	ctx := ctxT(t)
	name := uniqueName("gone")
	t.Cleanup(func() { undefine(t, tg, name) })
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	def, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name), Outputs: []plugins.Output{disk}})
	if err != nil {
		t.Fatal(err)
	}
	placed := def.Domain.Disks[0].Path
	if err := os.Remove(placed); err != nil {
		t.Fatal(err)
	}
	r, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: name}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{placed}, r.Domains[addr].MissingDisks); diff != "" {
		t.Errorf("missing disks (-want +got):\n%s", diff)
	}
}

func TestNetworkFindings(t *testing.T) {
	tg := newTestTarget(t, testConfig(t))
	ctx := ctxT(t)
	tests := map[string]struct {
		q    plugins.DomainQuery
		want []plugins.Severity
	}{
		"all mapped":           {plugins.DomainQuery{Networks: []string{"VM Network", "DMZ"}}, nil},
		"unmapped":             {plugins.DomainQuery{Networks: []string{"VM Network", "Backup", "Backup"}}, []plugins.Severity{plugins.SeverityError}},
		"override maps all":    {plugins.DomainQuery{Networks: []string{"Backup"}, Network: "default"}, nil},
		"mapped to no network": {plugins.DomainQuery{Networks: []string{"Backup"}, Network: "nosuchnet"}, []plugins.Severity{plugins.SeverityWarning}},
	}
	for tname, tc := range tests {
		t.Run(tname, func(t *testing.T) {
			tc.q.Address, tc.q.Name = "migration.n", uniqueName("net")
			r, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{tc.q}})
			if err != nil {
				t.Fatal(err)
			}
			var got []plugins.Severity
			for _, f := range r.Domains["migration.n"].Findings {
				got = append(got, f.Severity)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings %+v (-want +got):\n%s", r.Domains["migration.n"].Findings, diff)
			}
		})
	}
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	facts := baseFacts("x")
	facts.NICs = append(facts.NICs, plugins.NIC{ID: "nic2", MAC: "00:50:56:00:00:09", Network: "Backup"})
	_, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: uniqueName("net"), Facts: facts, Outputs: []plugins.Output{disk}})
	if err == nil || !plugins.IsTerminal(err) || !strings.Contains(err.Error(), `"Backup"`) {
		t.Errorf("Define with an unmapped NIC: err = %v, want terminal naming the network", err)
	}
	if !exists(disk.Path) {
		t.Errorf("disk moved although the NIC was unmapped")
	}
}

func TestDefineRefusesUnsafeNames(t *testing.T) {
	tg := newTestTarget(t, testConfig(t))
	ctx := ctxT(t)
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	bad := disk
	bad.DiskID = "../../etc/x"
	badFormat := disk
	badFormat.Format = "qcow2/../../x"
	tests := map[string]plugins.DefineRequest{
		"domain name with a slash": {Address: addr, Campaign: campaign, Name: "a/b", Facts: baseFacts("a"), Outputs: []plugins.Output{disk}},
		"hidden domain name":       {Address: addr, Campaign: campaign, Name: ".x", Facts: baseFacts("a"), Outputs: []plugins.Output{disk}},
		// Read as an option by tools given the disk's file name.
		"domain name like an option": {Address: addr, Campaign: campaign, Name: "-rf", Facts: baseFacts("a"), Outputs: []plugins.Output{disk}},
		"disk id with a path":        {Address: addr, Campaign: campaign, Name: uniqueName("ok"), Facts: baseFacts("a"), Outputs: []plugins.Output{bad}},
		"format with a path":         {Address: addr, Campaign: campaign, Name: uniqueName("ok"), Facts: baseFacts("a"), Outputs: []plugins.Output{badFormat}},
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := tg.Define(ctx, req)
			if !plugins.IsTerminal(err) || strings.HasPrefix(err.Error(), "define") {
				t.Errorf("err = %v, want terminal, without the engine's prefix", err)
			}
			if !exists(disk.Path) {
				t.Errorf("disk moved")
			}
		})
	}
}

func TestStoragePool(t *testing.T) {
	cfg := testConfig(t)
	poolDir := cfg.StorageDir
	cfg.StorageDir, cfg.StoragePool = "", uniqueName("pool")
	tg := newTestTarget(t, cfg)
	ctx := ctxT(t)
	px := &libvirtxml.StoragePool{Type: "dir", Name: cfg.StoragePool, Target: &libvirtxml.StoragePoolTarget{Path: poolDir}}
	x, err := px.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	err = tg.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		p, err := l.StoragePoolCreateXML(x, 0)
		if err == nil {
			t.Cleanup(func() {
				tg.conn.do(context.Background(), func(l *golibvirt.Libvirt) error { return l.StoragePoolDestroy(p) })
			})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("pooled")
	t.Cleanup(func() { undefine(t, tg, name) })
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	def, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name), Outputs: []plugins.Output{disk}})
	if err != nil {
		t.Fatal(err)
	}
	if got := filepath.Dir(def.Domain.Disks[0].Path); got != poolDir {
		t.Errorf("disk placed in %s, want the pool's %s", got, poolDir)
	}

	cfg.StoragePool = "no-such-pool"
	tg2 := newTestTarget(t, cfg)
	_, err = tg2.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: uniqueName("pooled"), Facts: baseFacts(name), Outputs: []plugins.Output{disk}})
	if !plugins.IsTerminal(err) {
		t.Errorf("missing pool: err = %v, want terminal", err)
	}
}

func TestStart(t *testing.T) {
	tg := newTestTarget(t, testConfig(t))
	ctx := ctxT(t)
	name := uniqueName("run")
	t.Cleanup(func() { undefine(t, tg, name) })
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	def, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name),
		Outputs: []plugins.Output{disk}, Domain: schema.DomainSettings{Start: true}})
	if err != nil {
		t.Fatal(err)
	}
	var active int32
	tg.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		d, err := l.DomainLookupByName(name)
		if err == nil {
			active, err = l.DomainIsActive(d)
		}
		return err
	})
	if active != 1 {
		t.Errorf("domain not running after Define with start")
	}
	r, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: name}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Domains[addr].Digest != def.Domain.Digest {
		t.Errorf("running domain digest %s, defined %s", r.Domains[addr].Digest, def.Domain.Digest)
	}
}

func TestCancelledContext(t *testing.T) {
	tg := newTestTarget(t, testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: "x"}}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestQEMUDriver defines a UEFI domain with the real qemu driver (what
// production uses), which validates far more than the test driver: ACPI
// for UEFI, the machine type, the firmware paths. It does not start it.
func TestQEMUDriver(t *testing.T) {
	cfg := testConfig(t)
	cfg.URI = "qemu:///system"
	tg := newTestTarget(t, cfg)
	ctx := ctxT(t)
	name := uniqueName("hyperagent-test-qemu")
	t.Cleanup(func() { undefine(t, tg, name) })
	facts := baseFacts(name)
	facts.Firmware = "uefi"
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	def, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: facts, Outputs: []plugins.Output{disk}})
	if err != nil {
		t.Fatal(err)
	}
	d := domainXML(t, tg, name)
	if d.Type != "kvm" && d.Type != "qemu" {
		t.Errorf("domain type %q, want kvm or qemu", d.Type)
	}
	r, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: name}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Domains[addr]; got.Digest != def.Domain.Digest || got.Owner != us {
		t.Errorf("observed %+v, defined digest %s", got, def.Domain.Digest)
	}
}

// TestSilentDaemon: a socket that accepts and never answers must not hold
// a caller past its context, neither while connecting nor afterwards.
func TestSilentDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c) // read everything, answer nothing
		}
	}()
	cfg := testConfig(t)
	cfg.Socket = sock
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: "x"}}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
}
