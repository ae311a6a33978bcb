// Package api holds the REST wire types of OmniSync (served under /v1) and a Go client for
// them. The CLI and the SDKs talk to daemons only through these types; they carry no logic
// beyond validating what a consumer submits.
package api
