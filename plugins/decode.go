package plugins

import (
	"fmt"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
)

// DecodeConfig decodes a plugin block's Config object into dst, a pointer to
// a struct whose fields carry `cty:"name"` tags for every attribute and
// nested block the plugin declared. Null primitives decode to the zero value
// (declare a Default where zero is not what unset means); a null nested
// block decodes to a nil pointer field.
func DecodeConfig(v cty.Value, dst any) error {
	v, err := cty.Transform(v, func(p cty.Path, v cty.Value) (cty.Value, error) {
		if !v.IsNull() {
			return v, nil
		}
		switch ty := v.Type(); {
		case ty == cty.String:
			return cty.StringVal(""), nil
		case ty == cty.Number:
			return cty.Zero, nil
		case ty == cty.Bool:
			return cty.False, nil
		case ty.IsListType():
			return cty.ListValEmpty(ty.ElementType()), nil
		case ty.IsSetType():
			return cty.SetValEmpty(ty.ElementType()), nil
		case ty.IsMapType():
			return cty.MapValEmpty(ty.ElementType()), nil
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	if err := gocty.FromCtyValue(v, dst); err != nil {
		return fmt.Errorf("decoding plugin config: %w", err)
	}
	return nil
}
