package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPI is the hand-written OpenAPI 3.0 document of every route in routeTable.
//
//go:embed openapi.json
var openAPI []byte

func (s *server) getOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPI)))
	_, _ = w.Write(openAPI)
}
