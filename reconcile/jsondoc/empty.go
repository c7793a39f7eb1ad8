package jsondoc

import "reflect"

// FillEmpty replaces every nil slice and map reachable from v (a pointer)
// through pointers, structs, slices and maps with an empty one, so that
// it marshals as [] or {} rather than null. A field tagged omitempty
// stays absent either way. Unexported fields and interfaces are left
// alone; nil pointers stay null.
func FillEmpty(v any) {
	fill(reflect.ValueOf(v))
}

func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			fill(v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if t.Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		for i := range v.Len() {
			fill(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			return
		}
		for it := v.MapRange(); it.Next(); {
			switch e := it.Value(); e.Kind() {
			case reflect.Pointer, reflect.Map:
				fill(e)
			case reflect.Struct, reflect.Slice:
				// Map elements are not addressable: fill a copy, put it back.
				c := reflect.New(e.Type()).Elem()
				c.Set(e)
				fill(c)
				v.SetMapIndex(it.Key(), c)
			}
		}
	}
}
