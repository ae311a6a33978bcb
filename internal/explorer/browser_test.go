package explorer_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/keys"
)

// screenshotsEnv names a directory (relative to the repository root, e.g. docs/img) where
// TestExplorerInChromium saves the README's screenshots; unset, it takes them into a
// temporary directory and only checks them.
const screenshotsEnv = "OMNISYNC_SCREENSHOTS"

// The explorer's pages, rendered by a real browser against a real devnet with a settled
// job, show that job, its node and its payment; a job page opened before its job runs
// follows it to settlement through the event stream, without reloading.
func TestExplorerInChromium(t *testing.T) {
	b := newBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Options{Home: t.TempDir(), BlockTime: 100 * time.Millisecond, RESTListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	demo, err := d.RunDemo(ctx, nil)
	if err != nil || demo.Status != api.StatusSettled {
		t.Fatalf("demo job: %+v, %v", demo, err)
	}
	base := d.RESTURL()
	client := api.NewClient(base)

	t.Run("network", func(t *testing.T) {
		dom := b.dumpDOM(ctx, t, base+"/")
		want := []string{`data-ready="true"`, devnet.ChainID, "Supply breakdown", "Governance", "Realised APY: </strong>", "blocks (heights", "annualised",
			// the latest blocks, the demo's job created in one of them, and their transactions
			"Recent blocks", `class="badge tx-kind">create_job<`, "Recent transactions", `class="badge b-settled">ok<`,
			// this router's recent work: the demo settled a job and placed it
			"Jobs on this router", "Settled per minute", "Waiting", "Running", "Placement p50 / p90", "placed in 10 min",
			"Figures from this router"}
		for _, id := range d.NodeIDs() {
			want = append(want, `title="`+id+`"`) // each node's row
		}
		requireAll(t, dom, want...)
		for _, gone := range []string{"Jobs per minute: </strong>", "Placement latency: </strong>", "Recent blocks and transactions: </strong>"} {
			if strings.Contains(dom, gone) {
				t.Errorf("the network page still says %q is missing", gone)
			}
		}
		if n := strings.Count(dom, `class="node on"`); n != len(d.NodeIDs()) {
			t.Errorf("the map shows %d online nodes, want %d", n, len(d.NodeIDs()))
		}
		// The devnet's nodes declare their coordinates: none is placed by its region.
		requireAll(t, dom, "Each node is placed where it declared it is.")
		if strings.Contains(dom, "declared no coordinates") {
			t.Error("the map places a devnet node by its region, not by its coordinates")
		}
	})
	t.Run("job", func(t *testing.T) {
		job, err := client.Job(ctx, demo.JobID)
		if err != nil || job.Kind != api.WorkloadTensor {
			t.Fatalf("the demo job: kind %q, %v", job.Kind, err)
		}
		dom := b.dumpDOM(ctx, t, base+"/jobs/"+demo.JobID)
		requireAll(t, dom, `data-ready="true"`, demo.JobID, `b-settled">settled<`, demo.NodeID, demo.Verdict,
			"<dt>Kind</dt><dd>tensor<", "Paid to the node", omniText(demo.PaidUomni)+" OMNI", omniText(demo.RefundedUomni)+" OMNI",
			demo.Txs["create"], demo.Txs["attest"])
	})
	t.Run("node", func(t *testing.T) {
		dom := b.dumpDOM(ctx, t, base+"/nodes/"+demo.NodeID)
		requireAll(t, dom, `data-ready="true"`, demo.NodeID, "1 verified, 0 failed", "Hardware", "where the node declared it is",
			// its chain history: the demo's job on the reliability chart and in its earnings
			"Reliability history", `class="spark"`, "1 settled and 0 failed in all", "Earned in all",
			`href="/jobs/`+demo.JobID+`"`, omniText(demo.PaidUomni)+" OMNI", "Slashes and failures", "No slash and no failed job.")
		for _, gone := range []string{"Reliability history: </strong>", "Earnings: </strong>", "Slashes: </strong>"} {
			if strings.Contains(dom, gone) {
				t.Errorf("the node page still says %q is missing", gone)
			}
		}
	})
	t.Run("api reference", func(t *testing.T) {
		dom := b.dumpDOM(ctx, t, base+"/docs/api")
		requireAll(t, dom, `data-ready="true"`, "OmniSync API", "Contents",
			// operations by tag, with anchors the contents link to
			`id="tag-jobs"`, `id="tag-chain"`, `id="op-listJobs"`, `href="#op-listJobs"`, `aria-label="Link to GET /v1/jobs"`,
			`id="op-jobLogs"`, `href="#op-jobLogs"`, "Read a job's logs", `id="op-submitJob"`, `id="op-listNodes"`,
			// parameters, request body and responses, with their schemas resolved and nested
			`<code class="pname">limit</code>`, "default 50", `<code class="mtype">application/json</code>`,
			`href="#schema-SubmitJobRequest"`, "Fields of JobSpec", `<code class="pname">max_price_per_hour</code>`,
			`<code class="pname">lat_e6</code>`, `"awaiting_inputs"`, `<span class="req">required</span>`,
			`<span class="rcode rc-ok">200</span>`, `<span class="rcode rc-err">401</span>`, `id="schema-JobLogs"`,
			// the security requirement, explained from the security scheme
			`id="auth-OmniSig"`, `href="#auth-OmniSig"`, "Authorization: OmniSig address=", "ed25519 signature")
		if strings.Count(dom, `href="#auth-OmniSig"`) < 3 {
			t.Error("listJobs, jobLogs and getJobOutput should each link to the OmniSig scheme")
		}
	})
	t.Run("account", func(t *testing.T) {
		consumer := string(keys.AddressOfKey(d.Keys.Consumer))
		acc, err := client.ChainAccount(ctx, consumer)
		if err != nil {
			t.Fatal(err)
		}
		dom := b.dumpDOM(ctx, t, base+"/accounts/"+consumer)
		requireAll(t, dom, `data-ready="true"`, consumer, omniText(acc.Balance)+" OMNI")
	})
	t.Run("screenshots", func(t *testing.T) {
		dir, save := os.LookupEnv(screenshotsEnv)
		if !save {
			dir = t.TempDir()
		} else if !filepath.IsAbs(dir) {
			dir = filepath.Join("..", "..", dir) // from the package to the repository root
		}
		for _, s := range []struct {
			file, path    string
			width, height int
		}{
			{"explorer-network.png", "/", 1280, 900},
			{"explorer-job.png", "/jobs/" + demo.JobID, 1280, 900},
			{"explorer-node.png", "/nodes/" + demo.NodeID, 1280, 1400},
			{"explorer-phone.png", "/", 390, 844},
			{"explorer-api.png", "/docs/api", 1280, 2000},
		} {
			file := filepath.Join(dir, s.file)
			b.run(ctx, t, fmt.Sprintf("--window-size=%d,%d", s.width, s.height), "--screenshot="+file, base+s.path)
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(f)
			_ = f.Close()
			if err != nil || cfg.Width != s.width {
				t.Errorf("%s: %dx%d, %v; want width %d", s.file, cfg.Width, cfg.Height, err, s.width)
			}
		}
		if save {
			t.Logf("screenshots saved in %s", dir)
		}
	})
	t.Run("live job", func(t *testing.T) {
		followLiveJob(ctx, t, b, d, client)
	})
}

// followLiveJob opens the page of a job still waiting for its inputs, uploads them once
// the page has subscribed to the job's events, and expects the page, never reloaded, to
// end on the settled job it was told about by the stream.
func followLiveJob(ctx context.Context, t *testing.T, b *browser, d *devnet.Devnet, client *api.Client) {
	spec, data, err := devnet.MatMulSpec(64, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	job, err := devnet.SubmitSigned(ctx, client, d.Keys.Consumer, devnet.ChainID, spec, nil) // inputs follow
	if err != nil || job.Status != api.StatusAwaitingInputs {
		t.Fatalf("submit: %+v, %v", job, err)
	}
	target, err := url.Parse(d.RESTURL())
	if err != nil {
		t.Fatal(err)
	}
	subscribed := make(chan struct{})
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/jobs/"+job.ID+"/events" {
			select {
			case <-subscribed:
			default:
				close(subscribed)
			}
		}
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	uploaded := make(chan error, 1)
	go func() {
		select {
		case <-subscribed:
		case <-ctx.Done():
			uploaded <- ctx.Err()
			return
		}
		for _, in := range spec.Inputs {
			if err := client.UploadInput(ctx, job.ID, in.Name, bytes.NewReader(data[in.Name]), in.Size); err != nil {
				uploaded <- err
				return
			}
		}
		uploaded <- nil
	}()
	dom := b.dumpDOM(ctx, t, proxy.URL+"/jobs/"+job.ID)
	if err := <-uploaded; err != nil {
		t.Fatalf("upload inputs: %v", err)
	}
	requireAll(t, dom, job.ID, `data-updates="events"`, `b-settled">settled<`, "Final: settled", "Paid to the node")
}

// browser runs headless Chromium.
type browser struct {
	bin     string
	profile string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no Chromium found (chromium, chromium-browser, google-chrome): install Debian's chromium to run the explorer's browser test")
	}
	// Not t.TempDir: the browser's helper processes may outlive it by a moment.
	profile, err := os.MkdirTemp("", "omnisync-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	return &browser{bin: bin, profile: profile}
}

// run starts the browser on one page with args and returns what it prints. The virtual
// time budget lets the page's requests finish (an open event stream holds it back until
// the stream ends) before the DOM is dumped or the screenshot taken.
func (b *browser) run(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--force-device-scale-factor=1", "--user-data-dir=" + b.profile, "--virtual-time-budget=4000"}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", b.bin, strings.Join(args, " "), err, lastLines(stderr.String(), 20))
	}
	return stdout.String()
}

func (b *browser) dumpDOM(ctx context.Context, t *testing.T, pageURL string) string {
	t.Helper()
	return b.run(ctx, t, "--window-size=1280,900", "--dump-dom", pageURL)
}

func requireAll(t *testing.T, dom string, want ...string) {
	t.Helper()
	var missing []string
	for _, w := range want {
		if !strings.Contains(dom, w) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the page lacks %q; it rendered:\n%s", missing, lastLines(dom, 40))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// omniText formats uomni as the explorer does: OMNI with thousands separators and up to
// six decimals.
func omniText(uomni uint64) string {
	whole := fmt.Sprint(uomni / 1_000_000)
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	frac := strings.TrimRight(fmt.Sprintf("%06d", uomni%1_000_000), "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}
