package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits of the REST data plane.
const (
	// MaxOutputAuthTTL is how far ahead an OutputAuth may expire: a leaked header is good
	// for no longer than this.
	MaxOutputAuthTTL = 15 * time.Minute
	// MaxUploadBytes is the sanity cap on one streamed input upload; the job's spec decides
	// the real size.
	MaxUploadBytes = 8 << 30
)

// Headers of GET /v1/jobs/{id}/output. The body is the output's bytes.
const (
	HeaderDigest    = "Omni-Digest"     // sha256:<hex> of the body
	HeaderVerified  = "Omni-Verified"   // "true" once the chain has settled the job verified
	HeaderJobStatus = "Omni-Job-Status" // the job's status when the output was read
	HeaderWarning   = "Omni-Warning"    // present while the output is unverified
)

// UnverifiedWarning is the Omni-Warning of an output the chain has not settled as verified.
const UnverifiedWarning = "unverified: the node's output has not been checked; it stays unverified until the chain settles the job"

// OutputAuthScheme is the Authorization scheme of an OutputAuth.
const OutputAuthScheme = "OmniSig"

// OutputAuth proves that the job's consumer asked for its output before Expires.
type OutputAuth struct {
	Address   string // the consumer's account address
	Expires   int64  // unix seconds
	Signature []byte // ed25519 over OutputAuthMessage, by Address's key
}

// JobOutput is GET /v1/jobs/{id}/output: the bytes a node returned for the job. Until the
// chain settles the job as verified (Verified), nothing vouches for them but the node.
type JobOutput struct {
	JobID    string
	Digest   string // sha256:<hex> of Data
	Size     int64
	Verified bool
	Status   string // the job's status
	Data     []byte
}

// OutputAuthMessage is what the consumer signs to read jobID's output until expires. The
// prefix keeps the signature from meaning anything anywhere else (a transaction, say).
func OutputAuthMessage(jobID string, expires int64) []byte {
	return []byte("omnisync job output v1\n" + jobID + "\n" + strconv.FormatInt(expires, 10))
}

// SignOutputAuth signs a request for jobID's output that is good for ttl from now; address
// is key's account address (this package cannot derive it).
func SignOutputAuth(key ed25519.PrivateKey, address, jobID string, ttl time.Duration, now time.Time) OutputAuth {
	expires := now.Add(ttl).Unix()
	return OutputAuth{Address: address, Expires: expires, Signature: ed25519.Sign(key, OutputAuthMessage(jobID, expires))}
}

// VerifyOutputAuth checks that auth was signed by pub for jobID, has not expired at now and
// expires no more than maxTTL after now, so a captured header is short-lived. It does not
// check that auth.Address is pub's address or the job's consumer: the caller knows both.
// Errors wrap ErrUnauthorized.
func VerifyOutputAuth(pub ed25519.PublicKey, jobID string, auth OutputAuth, now time.Time, maxTTL time.Duration) error {
	return verifyAuth(pub, OutputAuthMessage(jobID, auth.Expires), "output", "job "+jobID, auth, now, maxTTL)
}

// JobListAuthMessage is what a consumer signs to list its own jobs until expires: the
// same header as an OutputAuth, over a message no output request can be mistaken for.
func JobListAuthMessage(address string, expires int64) []byte {
	return []byte("omnisync job list v1\n" + address + "\n" + strconv.FormatInt(expires, 10))
}

// SignJobListAuth signs a request to list address's jobs, good for ttl from now.
func SignJobListAuth(key ed25519.PrivateKey, address string, ttl time.Duration, now time.Time) OutputAuth {
	expires := now.Add(ttl).Unix()
	return OutputAuth{Address: address, Expires: expires, Signature: ed25519.Sign(key, JobListAuthMessage(address, expires))}
}

// VerifyJobListAuth checks a job-list request as VerifyOutputAuth checks an output request.
func VerifyJobListAuth(pub ed25519.PublicKey, auth OutputAuth, now time.Time, maxTTL time.Duration) error {
	return verifyAuth(pub, JobListAuthMessage(auth.Address, auth.Expires), "job list", "the jobs of "+auth.Address, auth, now, maxTTL)
}

// verifyAuth checks a signed, time-bounded request for what msg names.
func verifyAuth(pub ed25519.PublicKey, msg []byte, kind, what string, auth OutputAuth, now time.Time, maxTTL time.Duration) error {
	expires := time.Unix(auth.Expires, 0)
	switch {
	case !now.Before(expires):
		return fmt.Errorf("%w: %s authorization expired at %s", ErrUnauthorized, kind, expires.UTC().Format(time.RFC3339))
	case expires.After(now.Add(maxTTL)):
		return fmt.Errorf("%w: %s authorization expires more than %s ahead", ErrUnauthorized, kind, maxTTL)
	case len(pub) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: no ed25519 public key for %s", ErrUnauthorized, auth.Address)
	case len(auth.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, auth.Signature):
		return fmt.Errorf("%w: %s authorization signature does not verify for %s and %s", ErrUnauthorized, kind, auth.Address, what)
	}
	return nil
}

// Header is auth as an Authorization header value:
// OmniSig address="…", expires="…", signature="<base64>".
func (a OutputAuth) Header() string {
	return fmt.Sprintf(`%s address="%s", expires="%d", signature="%s"`,
		OutputAuthScheme, a.Address, a.Expires, base64.StdEncoding.EncodeToString(a.Signature))
}

// maxAuthHeader bounds an Authorization header: ours is about 200 bytes.
const maxAuthHeader = 1024

// ParseOutputAuth reads an Authorization header written by OutputAuth.Header. It is strict:
// the scheme, then exactly the parameters address, expires and signature, once each, as
// quoted strings without escapes, separated by commas. Errors wrap ErrUnauthorized and say
// what is wrong.
func ParseOutputAuth(header string) (OutputAuth, error) {
	bad := func(format string, args ...any) (OutputAuth, error) {
		return OutputAuth{}, fmt.Errorf("%w: authorization header: %s (want %s address=\"…\", expires=\"<unix seconds>\", signature=\"<base64>\")",
			ErrUnauthorized, fmt.Sprintf(format, args...), OutputAuthScheme)
	}
	if header == "" {
		return bad("missing")
	}
	if len(header) > maxAuthHeader {
		return bad("longer than %d bytes", maxAuthHeader)
	}
	scheme, rest, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, OutputAuthScheme) {
		return bad("scheme is not %s", OutputAuthScheme)
	}
	params := map[string]string{}
	rest = trimOWS(rest)
	for {
		name, value, after, err := authParam(rest)
		if err != "" {
			return bad("%s", err)
		}
		switch name {
		case "address", "expires", "signature":
		default:
			return bad("unknown parameter %q", name)
		}
		if _, dup := params[name]; dup {
			return bad("parameter %s given twice", name)
		}
		params[name] = value
		if after = trimOWS(after); after == "" {
			break
		}
		if after[0] != ',' {
			return bad("parameters must be separated by commas")
		}
		rest = trimOWS(after[1:])
	}
	var a OutputAuth
	for _, name := range []string{"address", "expires", "signature"} {
		if _, ok := params[name]; !ok {
			return bad("parameter %s is missing", name)
		}
	}
	if a.Address = params["address"]; a.Address == "" {
		return bad("address is empty")
	}
	exp := params["expires"]
	if exp == "" || len(exp) > 18 || strings.Trim(exp, "0123456789") != "" {
		return bad("expires must be unix seconds, a decimal number")
	}
	a.Expires, _ = strconv.ParseInt(exp, 10, 64) // 18 digits always fit
	sig, err := base64.StdEncoding.Strict().DecodeString(params["signature"])
	if err != nil {
		return bad("signature is not standard base64")
	}
	if len(sig) != ed25519.SignatureSize {
		return bad("signature is %d bytes, an ed25519 signature is %d", len(sig), ed25519.SignatureSize)
	}
	a.Signature = sig
	return a, nil
}

// authParam reads name="value" from the start of s; err says what is wrong.
func authParam(s string) (name, value, rest, err string) {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z') {
		i++
	}
	if i == 0 {
		return "", "", "", "expected a parameter name"
	}
	name, s = s[:i], s[i:]
	if !strings.HasPrefix(s, `="`) {
		return "", "", "", fmt.Sprintf("parameter %s must be name=\"value\"", name)
	}
	s = s[2:]
	end := strings.IndexByte(s, '"')
	if end < 0 {
		return "", "", "", fmt.Sprintf("parameter %s has no closing quote", name)
	}
	value = s[:end]
	for j := 0; j < len(value); j++ {
		// visible ASCII only, and no escapes: nothing we send needs them
		if c := value[j]; c < 0x21 || c > 0x7e || c == '\\' {
			return "", "", "", fmt.Sprintf("parameter %s holds a character outside visible ASCII or a backslash", name)
		}
	}
	return name, value, s[end+1:], ""
}

func trimOWS(s string) string { return strings.TrimLeft(s, " \t") }
