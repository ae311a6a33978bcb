// Package explorer is the network's web explorer: HTML, CSS and JavaScript modules
// embedded in the binary and served by every REST server at / (see Handler). The pages
// read the public REST API from the browser and nothing else; this package serves files
// only and must not import the daemons or the API's service, so every figure a page
// shows is one the API gives anyone.
package explorer
