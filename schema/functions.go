package schema

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the functions available in expressions. Paths given to
// file() and templatefile() are relative to dir, the config directory. The
// operator implementations of stdlib (AddFunc, EqualFunc …) are left out:
// they are what the syntax's operators call, not functions users write.
func functions(dir string) map[string]function.Function {
	fns := map[string]function.Function{
		// strings
		"chomp":         stdlib.ChompFunc,
		"format":        stdlib.FormatFunc,
		"formatlist":    stdlib.FormatListFunc,
		"indent":        stdlib.IndentFunc,
		"join":          stdlib.JoinFunc,
		"lower":         stdlib.LowerFunc,
		"regex":         stdlib.RegexFunc,
		"regexall":      stdlib.RegexAllFunc,
		"regex_replace": stdlib.RegexReplaceFunc,
		"replace":       stdlib.ReplaceFunc,
		"split":         stdlib.SplitFunc,
		"strrev":        stdlib.ReverseFunc,
		"strlen":        stdlib.StrlenFunc,
		"substr":        stdlib.SubstrFunc,
		"title":         stdlib.TitleFunc,
		"trim":          stdlib.TrimFunc,
		"trimprefix":    stdlib.TrimPrefixFunc,
		"trimspace":     stdlib.TrimSpaceFunc,
		"trimsuffix":    stdlib.TrimSuffixFunc,
		"upper":         stdlib.UpperFunc,
		// collections
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"index":           stdlib.IndexFunc,
		"keys":            stdlib.KeysFunc,
		"length":          lengthFunc,
		"lookup":          stdlib.LookupFunc,
		"merge":           stdlib.MergeFunc,
		"range":           stdlib.RangeFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,
		// numbers
		"abs":      stdlib.AbsoluteFunc,
		"ceil":     stdlib.CeilFunc,
		"floor":    stdlib.FloorFunc,
		"log":      stdlib.LogFunc,
		"max":      stdlib.MaxFunc,
		"min":      stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc,
		"pow":      stdlib.PowFunc,
		"signum":   stdlib.SignumFunc,
		// encoding and time
		"base64decode": base64DecodeFunc,
		"base64encode": base64EncodeFunc,
		"csvdecode":    stdlib.CSVDecodeFunc,
		"jsondecode":   jsonDecodeFunc,
		"jsonencode":   stdlib.JSONEncodeFunc,
		"formatdate":   stdlib.FormatDateFunc,
		"timeadd":      stdlib.TimeAddFunc,
		// type conversion
		"tobool":   makeToFunc(cty.Bool),
		"tolist":   makeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":    makeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber": makeToFunc(cty.Number),
		"toset":    makeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring": makeToFunc(cty.String),
		// errors
		"try": tryfunc.TryFunc,
		"can": tryfunc.CanFunc,
		// files, relative to the config directory
		"file":       fileFunc(dir),
		"fileexists": fileExistsFunc(dir),
	}
	for name, f := range fns {
		if name != "try" && name != "can" { // they report their expression's own diagnostics
			fns[name] = hideSensitiveErrors(f)
		}
	}
	// templatefile sees every function except itself: a template that
	// calls templatefile could recurse without end.
	fns["templatefile"] = hideSensitiveErrors(templateFileFunc(dir, fns))
	return fns
}

// hideSensitiveErrors wraps f so that its errors do not show sensitive
// values: many functions quote the argument they refuse (tonumber's
// `cannot convert "…" to number`), which would print a secret, or a file
// read from outside the configuration directory, in the diagnostic.
func hideSensitiveErrors(f function.Function) function.Function {
	params := f.Params()
	for i := range params {
		params[i].AllowMarked = true // f.Call handles the marks as f declares
	}
	varParam := f.VarParam()
	if varParam != nil {
		varParam.AllowMarked = true
	}
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      params,
		VarParam:    varParam,
		Type: func(args []cty.Value) (cty.Type, error) {
			ty, err := f.ReturnTypeForValues(args)
			return ty, redactError(err, args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, err := f.Call(args)
			return v, redactError(err, args)
		},
	})
}

// redactError replaces err when the argument it is about, or for an error
// about no argument in particular any argument, is or holds a sensitive
// value.
func redactError(err error, args []cty.Value) error {
	if err == nil {
		return nil
	}
	var ae function.ArgError
	if errors.As(err, &ae) {
		if ae.Index < len(args) && args[ae.Index].ContainsMarked() {
			return function.NewArgErrorf(ae.Index, "the value is sensitive, so what is wrong with it is not shown")
		}
		return err
	}
	for _, a := range args {
		if a.ContainsMarked() {
			return fmt.Errorf("an argument is sensitive, so the error is not shown")
		}
	}
	return err
}

var base64EncodeFunc = function.New(&function.Spec{
	Description: "Encodes a string's UTF-8 bytes as base64.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder {
		return b.NotNull()
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

var base64DecodeFunc = function.New(&function.Spec{
	Description: "Decodes base64 to a UTF-8 string.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := base64.StdEncoding.DecodeString(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "invalid base64: %s", err)
		}
		if !utf8.Valid(b) {
			return cty.UnknownVal(cty.String), function.NewArgErrorf(0, "the decoded bytes are not valid UTF-8")
		}
		return cty.StringVal(string(b)), nil
	},
})

// jsonDecodeFunc is stdlib's jsondecode, refusing JSON that nests deeper
// than maxNesting: cty decodes it recursively.
var jsonDecodeFunc = function.New(&function.Spec{
	Description: stdlib.JSONDecodeFunc.Description(),
	Params:      stdlib.JSONDecodeFunc.Params(),
	Type: func(args []cty.Value) (cty.Type, error) {
		if v := args[0]; v.IsKnown() && !v.IsNull() {
			if d := checkJSONNesting([]byte(v.AsString()), "<jsondecode>", 0, false); d != nil {
				return cty.NilType, function.NewArgErrorf(0, "the JSON nests more than %d levels deep (line %d); hyperagent reads no deeper", maxNesting, d.Subject.Start.Line)
			}
		}
		return stdlib.JSONDecodeFunc.ReturnTypeForValues(args)
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return stdlib.JSONDecodeFunc.Call(args)
	},
})

// resolve makes p absolute against the config directory.
func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// readTextFile reads the file at p, relative to the config directory dir,
// for file() and templatefile(). It also says whether the file, symbolic
// links resolved, lies outside dir: what is read from elsewhere on the
// machine (/etc/shadow) is sensitive, so that no message or plan shows it.
func readTextFile(dir, p string) (text string, outside bool, err error) {
	path := resolve(dir, p)
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // open what was checked
	}
	b, err := readRegular(path)
	if err != nil {
		return "", false, err
	}
	if !utf8.Valid(b) {
		return "", false, fmt.Errorf("%s is not valid UTF-8", p)
	}
	return string(b), !within(dir, path), nil
}

// within reports whether path, absolute with symbolic links resolved, lies
// in dir.
func within(dir, path string) bool {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// sensitiveIf marks v sensitive when it was read from outside the config
// directory.
func sensitiveIf(v cty.Value, outside bool) cty.Value {
	return markIf(v, outside)
}

func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a UTF-8 file relative to the config directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, outside, err := readTextFile(dir, args[0].AsString())
			if err != nil {
				return cty.UnknownVal(cty.String), function.NewArgError(0, err)
			}
			return sensitiveIf(cty.StringVal(s), outside), nil
		},
	})
}

func fileExistsFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Says whether a regular file exists, relative to the config directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			fi, err := os.Stat(resolve(dir, args[0].AsString()))
			if err != nil {
				if os.IsNotExist(err) {
					return cty.False, nil
				}
				return cty.UnknownVal(cty.Bool), function.NewArgError(0, err)
			}
			return cty.BoolVal(fi.Mode().IsRegular()), nil
		},
	})
}

// templateFileFunc renders a file as an HCL template with the given object
// or map of variables. Only those variables are in scope, as in Terraform.
func templateFileFunc(dir string, fns map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Description: "Renders a template file relative to the config directory.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.DynamicPseudoType),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			src, outside, err := readTextFile(dir, name)
			if err != nil {
				return cty.DynamicVal, function.NewArgError(0, err)
			}
			vars := args[1]
			if vars.IsNull() || !(vars.Type().IsObjectType() || vars.Type().IsMapType()) {
				return cty.DynamicVal, function.NewArgErrorf(1, "must be a map or object of template variables")
			}
			if !vars.IsWhollyKnown() {
				return cty.DynamicVal, nil
			}
			if err := checkTemplateNesting([]byte(src), name); err != nil {
				return cty.DynamicVal, function.NewArgError(0, err)
			}
			expr, diags := hclsyntax.ParseTemplate([]byte(src), name, hcl.InitialPos)
			if diags.HasErrors() {
				if outside {
					return cty.DynamicVal, function.NewArgErrorf(0, "the template %s, outside the configuration directory, is sensitive: its errors are not shown", name)
				}
				return cty.DynamicVal, function.NewArgErrorf(0, "%s", diags.Error())
			}
			ctx := &hcl.EvalContext{Variables: vars.AsValueMap(), Functions: fns}
			v, diags := expr.Value(ctx)
			if diags.HasErrors() {
				if outside {
					return cty.DynamicVal, fmt.Errorf("the template %s, outside the configuration directory, is sensitive: its errors are not shown", name)
				}
				return cty.DynamicVal, fmt.Errorf("%s", diags.Error())
			}
			return sensitiveIf(v, outside), nil
		},
	})
}

// lengthFunc is Terraform's length(): the number of elements of a list,
// set, tuple, map or object, or of characters of a string.
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true}},
	Type:   function.StaticReturnType(cty.Number),
	RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder {
		return b.NotNull()
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		ty := v.Type()
		switch {
		case ty == cty.String:
			return stdlib.Strlen(v)
		case ty.IsListType(), ty.IsSetType(), ty.IsMapType(), ty.IsTupleType(), ty.IsObjectType():
			return cty.NumberIntVal(int64(v.LengthInt())), nil
		}
		return cty.UnknownVal(cty.Number), fmt.Errorf("length of a %s: want a string, list, set, tuple, map or object", ty.FriendlyName())
	},
})
