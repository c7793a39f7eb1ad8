// Package webtest drives a real browser (Debian's chromium, headless,
// through chromedp) for the tests of the agent's status page. Only tests
// import it.
//
// A test that needs the browser fails, naming .ci/setup, when chromium
// is not installed; it never skips.
package webtest
