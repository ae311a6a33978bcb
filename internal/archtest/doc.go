// Package archtest holds the tests that keep the architecture honest: the deterministic
// cores stay pure, heavy engines stay in the packages that own them, and every package
// says what it is for. It has no non-test code beyond this comment.
package archtest
