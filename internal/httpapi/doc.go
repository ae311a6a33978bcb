// Package httpapi serves the OmniSync REST API under /v1 (wire types in package api), its
// OpenAPI document, server-sent job events and Prometheus /metrics. It owns HTTP concerns
// only: decoding, request checks that need no state, status mapping, logging and metrics.
// Everything else goes through the small Service interface its owner implements (the
// router), so this package must not import the chain, transport or router packages.
package httpapi
