package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// maxNesting bounds how deeply the source of an expression may nest. HCL's
// parser and evaluator recurse once per level, using kilobytes of stack
// each: 80,000 nested brackets in a 160 KB file overflowed Go's stack, a
// crash that no recover catches. So source text is measured before it is
// parsed: config and -var-file files, template files, -var values, and
// JSON given to jsondecode(). Real configurations nest a few levels.
const maxNesting = 1000

// nestingError is the diagnostic for source that nests too deeply at rng.
func nestingError(rng hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Expression nested too deeply",
		Detail: fmt.Sprintf("Brackets, operators and template directives nest more than %d levels deep here. "+
			"hyperagent reads no deeper, so that reading cannot exhaust its stack.", maxNesting),
		Subject: rng.Ptr(),
	}
}

// checkFileNesting measures a config or -var-file file.
func checkFileNesting(src []byte, filename string, isJSON bool) *hcl.Diagnostic {
	if isJSON {
		return checkJSONNesting(src, filename, 0, true)
	}
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	if rng, over := tokenNesting(tokens, 0, false); over {
		return nestingError(rng)
	}
	return nil
}

// checkTemplateNesting measures a template (templatefile's file) and
// returns an error for the function to report.
func checkTemplateNesting(src []byte, filename string) error {
	tokens, _ := hclsyntax.LexTemplate(src, filename, hcl.InitialPos)
	if rng, over := tokenNesting(tokens, 0, true); over {
		return fmt.Errorf("%s nests brackets, operators and template directives more than %d levels deep (line %d); hyperagent reads no deeper", filename, maxNesting, rng.Start.Line)
	}
	return nil
}

// checkExpressionNesting measures an expression given outside any file
// (-var, the environment).
func checkExpressionNesting(src []byte, filename string) *hcl.Diagnostic {
	tokens, _ := hclsyntax.LexExpression(src, filename, hcl.InitialPos)
	if rng, over := tokenNesting(tokens, 0, false); over {
		return nestingError(rng)
	}
	return nil
}

// nestFrame is one open bracket, string or heredoc while tokens are
// measured.
type nestFrame struct {
	template bool // a quoted string or heredoc: its parts are a sequence
	brace    bool // a body or object, whose items newlines separate
	// ops counts the operators and bracketed groups met since the last
	// separator: each nests the expression's tree one level deeper, as
	// in 1+1+…+1 or x[i][i]…[i].
	ops int
}

// tokenNesting measures the tokens of HCL native syntax, starting at depth
// base, and returns where the depth first passes maxNesting. The measure
// counts what makes the parser or the evaluator recurse: open brackets,
// strings, heredocs and template sequences; operators (unary ones and
// ternaries recurse while parsing, chains of binary ones build a tree as
// deep as they are long); bracketed groups that follow one another (index
// and call chains); and %{if}/%{for} directives. A comma, or a newline in a
// body or object, ends an expression. It overestimates rather than misses.
func tokenNesting(tokens hclsyntax.Tokens, base int, template bool) (hcl.Range, bool) {
	stack := []nestFrame{{template: template, brace: !template}}
	depth := base + 1
	directives := 0
	for i, tok := range tokens {
		top := &stack[len(stack)-1]
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if !top.template {
				top.ops++
				depth++
			}
			stack = append(stack, nestFrame{
				template: tok.Type == hclsyntax.TokenOQuote || tok.Type == hclsyntax.TokenOHeredoc,
				brace:    tok.Type == hclsyntax.TokenOBrace,
			})
			depth++
			if tok.Type == hclsyntax.TokenTemplateControl && i+1 < len(tokens) && tokens[i+1].Type == hclsyntax.TokenIdent {
				switch string(tokens[i+1].Bytes) {
				case "if", "for":
					directives++
					depth++
				case "endif", "endfor":
					if directives > 0 {
						directives--
						depth--
					}
				}
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 1 {
				depth -= 1 + top.ops
				stack = stack[:len(stack)-1]
			}
		case hclsyntax.TokenComma:
			depth -= top.ops
			top.ops = 0
		case hclsyntax.TokenNewline:
			if top.brace {
				depth -= top.ops
				top.ops = 0
			}
		case hclsyntax.TokenQuestion, hclsyntax.TokenColon, hclsyntax.TokenBang,
			hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar,
			hclsyntax.TokenSlash, hclsyntax.TokenPercent,
			hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual,
			hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq,
			hclsyntax.TokenAnd, hclsyntax.TokenOr:
			if !top.template {
				top.ops++
				depth++
			}
		}
		if depth > maxNesting {
			return tok.Range, true
		}
	}
	return hcl.Range{}, false
}

// checkJSONNesting measures JSON, starting at depth base: its arrays and
// objects and, with templates (HCL's JSON syntax, which evaluates strings
// as templates), each string that holds one ("${", "%{"). The scan needs
// no valid JSON: it only tells strings from the rest.
func checkJSONNesting(src []byte, filename string, base int, templates bool) *hcl.Diagnostic {
	depth := base
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '[', '{':
			depth++
			if depth > maxNesting {
				return nestingError(jsonRange(src, filename, i))
			}
		case ']', '}':
			if depth > base {
				depth--
			}
		case '"':
			end := jsonStringEnd(src, i)
			if !templates {
				i = end - 1
				continue
			}
			if d := checkJSONString(src[i:end], src, filename, i, depth); d != nil {
				return d
			}
			i = end - 1
		}
	}
	return nil
}

// jsonStringEnd returns the index just after the string that starts with
// the quote at src[start], or len(src) if it does not end.
func jsonStringEnd(src []byte, start int) int {
	for j := start + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(src)
}

// checkJSONString measures the template a JSON string holds, if any.
func checkJSONString(lit, src []byte, filename string, at, depth int) *hcl.Diagnostic {
	if bytes.IndexByte(lit, '{') < 0 && !bytes.Contains(lit, []byte(`\u`)) {
		return nil // no template sequence, even escaped
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		s = string(lit) // not valid JSON: the parser will say so
	}
	if !strings.Contains(s, "${") && !strings.Contains(s, "%{") {
		return nil
	}
	tokens, _ := hclsyntax.LexTemplate([]byte(s), filename, hcl.InitialPos)
	if _, over := tokenNesting(tokens, depth, true); over {
		return nestingError(jsonRange(src, filename, at))
	}
	return nil
}

// jsonRange is the range of the byte at offset in src.
func jsonRange(src []byte, filename string, offset int) hcl.Range {
	line := 1 + bytes.Count(src[:offset], []byte("\n"))
	col := offset - bytes.LastIndexByte(src[:offset], '\n')
	start := hcl.Pos{Line: line, Column: col, Byte: offset}
	end := hcl.Pos{Line: line, Column: col + 1, Byte: offset + 1}
	return hcl.Range{Filename: filename, Start: start, End: end}
}
