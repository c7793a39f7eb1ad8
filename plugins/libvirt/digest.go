package libvirt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"reflect"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/hypersdk/hyperagent/plugins"
)

// MetadataNS is the XML namespace of the metadata hyperagent puts in the
// domains it defines. Its presence, with a migration address, is what
// makes a domain hyperagent's.
const MetadataNS = "https://hyperagent.dev/xmlns/domain/1"

// haMetadata is our element. Its children are matched by name in any
// namespace: Define writes them in ours (metadataXML), while libvirt's
// DomainSetMetadata, which import uses, puts only the element it is given
// in the namespace and leaves its children in none.
type haMetadata struct {
	XMLName  xml.Name `xml:"https://hyperagent.dev/xmlns/domain/1 migration"`
	Address  string   `xml:"address"`
	Campaign string   `xml:"campaign"`
}

// metadataXML is our element inside <metadata>: the owner's migration
// address and campaign (state lineage). libvirt wants each child of
// <metadata> in its own namespace, with a prefix.
func metadataXML(o plugins.Owner) string {
	var b strings.Builder
	b.WriteString(`<hyperagent:migration xmlns:hyperagent="` + MetadataNS + `"><hyperagent:address>`)
	xml.EscapeText(&b, []byte(o.Address)) //nolint:errcheck // strings.Builder does not fail
	b.WriteString(`</hyperagent:address><hyperagent:campaign>`)
	xml.EscapeText(&b, []byte(o.Campaign)) //nolint:errcheck // strings.Builder does not fail
	b.WriteString(`</hyperagent:campaign></hyperagent:migration>`)
	return b.String()
}

// metadataElement is our element as DomainSetMetadata takes it: without
// a namespace, which libvirt gives it (prefix "hyperagent", MetadataNS).
func metadataElement(o plugins.Owner) string {
	var b strings.Builder
	b.WriteString(`<migration><address>`)
	xml.EscapeText(&b, []byte(o.Address)) //nolint:errcheck // strings.Builder does not fail
	b.WriteString(`</address><campaign>`)
	xml.EscapeText(&b, []byte(o.Campaign)) //nolint:errcheck // strings.Builder does not fail
	b.WriteString(`</campaign></migration>`)
	return b.String()
}

// managedBy returns the owner in our metadata; zero for a domain
// hyperagent did not define.
func managedBy(d *libvirtxml.Domain) plugins.Owner {
	if d.Metadata == nil || d.Metadata.XML == "" {
		return plugins.Owner{}
	}
	dec := xml.NewDecoder(strings.NewReader("<metadata>" + d.Metadata.XML + "</metadata>"))
	for {
		tok, err := dec.Token()
		if err != nil {
			return plugins.Owner{}
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Space != MetadataNS || se.Name.Local != "migration" {
			continue
		}
		var m haMetadata
		if err := dec.DecodeElement(&m, &se); err != nil {
			return plugins.Owner{}
		}
		return plugins.Owner{Address: m.Address, Campaign: m.Campaign}
	}
}

// observed is what one domain's XML, as libvirt returns it, says.
type observed struct {
	UUID      string
	Digest    string
	ManagedBy plugins.Owner
	Disks     []string // source files, in device order
}

// observeXML parses a domain's inactive XML and computes its digest.
func observeXML(doc string) (observed, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		return observed{}, fmt.Errorf("parse domain XML: %w", err)
	}
	o := observed{UUID: d.UUID, ManagedBy: managedBy(&d)}
	if d.Devices != nil {
		for _, disk := range d.Devices.Disks {
			if disk.Source != nil && disk.Source.File != nil && disk.Source.File.File != "" {
				o.Disks = append(o.Disks, disk.Source.File.File)
			}
		}
	}
	dg, err := digest(&d)
	if err != nil {
		return observed{}, err
	}
	o.Digest = dg
	return o, nil
}

// digest is the sha256 of the domain with what libvirt manages on its own
// removed, so that the XML we define and the XML libvirt later returns give
// the same digest until someone changes the definition. Removed: the
// runtime id, metadata (others annotate domains too; ownership is read
// from it separately), device addresses and aliases (assigned by libvirt),
// controllers (added by libvirt to hold the devices), interface target
// devices and the runtime parts of a network source, dynamic security labels.
// d is modified.
func digest(d *libvirtxml.Domain) (string, error) {
	d.ID = nil
	d.Metadata = nil
	d.Resource = nil
	var labels []libvirtxml.DomainSecLabel
	for _, l := range d.SecLabel {
		if l.Type != "dynamic" {
			labels = append(labels, l)
		}
	}
	d.SecLabel = labels
	if d.Devices != nil {
		d.Devices.Controllers = nil
		for i := range d.Devices.Interfaces {
			iface := &d.Devices.Interfaces[i]
			iface.Target = nil
			if iface.Source != nil && iface.Source.Network != nil {
				iface.Source.Network.Bridge = ""
				iface.Source.Network.PortID = ""
			}
		}
		stripGenerated(reflect.ValueOf(d.Devices).Elem())
	}
	doc, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal domain XML: %w", err)
	}
	// Marshal indents nothing and orders by struct fields, so equal models
	// give equal bytes; trim only the surrounding space.
	sum := sha256.Sum256(bytes.TrimSpace([]byte(doc)))
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

var (
	addressType = reflect.TypeOf(&libvirtxml.DomainAddress{})
	aliasType   = reflect.TypeOf(&libvirtxml.DomainAlias{})
)

// stripGenerated clears every device's Address and Alias, at any depth
// (disks, interfaces, and the devices libvirt adds such as memballoon).
func stripGenerated(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			stripGenerated(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			stripGenerated(v.Index(i))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !f.CanSet() {
				continue
			}
			if f.Type() == addressType || f.Type() == aliasType {
				f.Set(reflect.Zero(f.Type()))
				continue
			}
			stripGenerated(f)
		}
	}
}
