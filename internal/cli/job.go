package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
)

func newJobCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit a job, follow it, fetch its verified result, cancel it",
		Long: `A consumer's jobs, through a router's REST API (--api), signed with the wallet (--wallet).

Tensor jobs take NumPy .npy files and give one back: make the inputs with
numpy.save("A.npy", a.astype(np.int8)), read the result with numpy.load("ID.npy").`,
	}
	f.addWalletFlags(cmd)
	cmd.AddCommand(newJobSubmitCmd(g, f), newJobStatusCmd(g, f), newJobWaitCmd(g, f), newJobResultCmd(g, f), newJobCancelCmd(g, f), newJobListCmd(g, f))
	return cmd
}

// jobSubmitFlags are job submit's settings.
type jobSubmitFlags struct {
	kernel   string
	inputs   []string
	budget   string
	maxPrice string
	timeout  time.Duration
	verify   string
	wait     bool
	region   string
	from     string
	maxLatMs uint32
}

func newJobSubmitCmd(g *globals, f *remoteFlags) *cobra.Command {
	var s jobSubmitFlags
	cmd := &cobra.Command{
		Use:   "submit --kernel matmul-int8 --input a=A.npy --input b=B.npy",
		Short: "Submit a tensor job: escrow its budget and send its inputs",
		Long: `Signs a create_job transaction that locks --budget OMNI in escrow, and submits the job
with its inputs to the router, which places it on the best node and has validators check
the result (--verify). It prints the job id; with --wait it follows the job to its end.
Nothing is escrowed unless the router accepts the job.`,
		Example: `  omnisync job submit --kernel matmul-int8 --input a=A.npy --input b=B.npy --wait
  omnisync job submit --kernel matmul-int8 --input a=A.npy --input b=B.npy --budget 2 --max-price 3 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, data, err := s.spec()
			if err != nil {
				return err
			}
			key, err := f.loadKey()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
			defer cancel()
			c := f.client()
			health, err := c.Health(ctx)
			if err != nil {
				return f.explain(err)
			}
			job, err := devnet.SubmitSigned(ctx, c, key, health["chain_id"], spec, data)
			if err != nil {
				return f.explain(err)
			}
			if !s.wait {
				if g.json() {
					return writeJSON(g.stdout, job)
				}
				fmt.Fprintf(g.stdout, "%s\n", job.ID)
				fmt.Fprintf(g.stderr, "submitted: %s escrowed; follow it with `omnisync job wait %s`\n", omni(spec.Budget), job.ID)
				return nil
			}
			return g.waitJob(cmd, f, job.ID, time.Duration(spec.TimeoutSeconds)*time.Second)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&s.kernel, "kernel", tensor.KernelMatMulInt8, "built-in verifiable kernel: "+strings.Join(tensor.Kernels(), ", "))
	fl.StringArrayVar(&s.inputs, "input", nil, "NAME=FILE.npy, an operand in the kernel's order (repeatable; matmul-int8: a and b, int8 matrices)")
	fl.StringVar(&s.budget, "budget", "1", "OMNI locked in escrow; what the job does not cost is refunded")
	fl.StringVar(&s.maxPrice, "max-price", "3", "highest bid per GPU-hour a node may have, OMNI")
	fl.DurationVar(&s.timeout, "timeout", 5*time.Minute, "the job's deadline: unfinished by then, it is refunded")
	fl.StringVar(&s.verify, "verify", api.VerifyFreivald, "verification level: freivalds")
	fl.BoolVar(&s.wait, "wait", false, "follow the job until it ends, with a status line")
	fl.StringVar(&s.region, "region", "", "only nodes in this region (as nodes declare it, e.g. eu-central)")
	fl.StringVar(&s.from, "from", "", "where you are, LAT,LON in degrees (e.g. 52.52,13.40): nodes nearer score higher on latency")
	fl.Uint32Var(&s.maxLatMs, "max-latency-ms", 0, "only nodes within this estimated round trip of --from, ms (0: any)")
	return cmd
}

// spec reads the inputs and builds the job's spec.
func (s jobSubmitFlags) spec() (api.JobSpec, map[string][]byte, error) {
	if len(s.inputs) == 0 {
		return api.JobSpec{}, nil, fmt.Errorf("no inputs: give each operand as --input NAME=FILE.npy (matmul-int8: --input a=A.npy --input b=B.npy)")
	}
	budget, err := parseOMNI(s.budget)
	if err != nil {
		return api.JobSpec{}, nil, fmt.Errorf("--budget: %w", err)
	}
	maxPrice, err := parseOMNI(s.maxPrice)
	if err != nil {
		return api.JobSpec{}, nil, fmt.Errorf("--max-price: %w", err)
	}
	if s.timeout < time.Second {
		return api.JobSpec{}, nil, fmt.Errorf("--timeout %s: want at least 1s", s.timeout)
	}
	placement, err := s.placement()
	if err != nil {
		return api.JobSpec{}, nil, err
	}
	data := map[string][]byte{}
	spec := api.JobSpec{
		Workload:  api.Workload{Kind: api.WorkloadTensor, Kernel: s.kernel},
		Resources: api.Resources{GPUs: 1}, Placement: placement, MaxPricePerHour: maxPrice, Budget: budget,
		TimeoutSeconds: uint64(s.timeout / time.Second), Verification: s.verify,
	}
	for _, in := range s.inputs {
		name, file, ok := strings.Cut(in, "=")
		if !ok || name == "" || file == "" {
			return api.JobSpec{}, nil, fmt.Errorf("--input %q: want NAME=FILE.npy", in)
		}
		if _, dup := data[name]; dup {
			return api.JobSpec{}, nil, fmt.Errorf("--input %s given twice", name)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return api.JobSpec{}, nil, fmt.Errorf("--input %s: %w", name, err)
		}
		m, err := tensor.ParseNPYInt8(raw)
		if err != nil {
			return api.JobSpec{}, nil, fmt.Errorf("--input %s (%s): %w", name, file, err)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			return api.JobSpec{}, nil, err
		}
		data[name] = b
		spec.Inputs = append(spec.Inputs, api.Input{Name: name, Digest: api.DigestOf(b), Size: int64(len(b))})
	}
	if err := spec.Validate(); err != nil {
		return api.JobSpec{}, nil, err
	}
	return spec, data, nil
}

// placement reads --region, --from and --max-latency-ms.
func (s jobSubmitFlags) placement() (api.Placement, error) {
	p := api.Placement{Region: s.region, MaxLatencyMs: s.maxLatMs}
	if s.from == "" {
		if s.maxLatMs > 0 {
			return p, errors.New("--max-latency-ms needs --from LAT,LON: the latency is estimated from where you are")
		}
		return p, nil
	}
	latText, lonText, ok := strings.Cut(s.from, ",")
	lat, errLat := strconv.ParseFloat(strings.TrimSpace(latText), 64)
	lon, errLon := strconv.ParseFloat(strings.TrimSpace(lonText), 64)
	if !ok || errLat != nil || errLon != nil || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return p, fmt.Errorf("--from %q: want LAT,LON in degrees, e.g. 52.52,13.40", s.from)
	}
	p.LatE6, p.LonE6 = int32(math.Round(lat*1e6)), int32(math.Round(lon*1e6))
	return p, nil
}

func newJobStatusCmd(g *globals, f *remoteFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status JOB_ID",
		Short: "Show a job: status, node, verification, payment, and its events",
		Args:  namedArgs("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				j, err := c.Job(ctx, args[0])
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, j)
				}
				g.printJob(j)
				return nil
			})
		},
	}
}

func newJobWaitCmd(g *globals, f *remoteFlags) *cobra.Command {
	var limit time.Duration
	cmd := &cobra.Command{
		Use:   "wait JOB_ID",
		Short: "Follow a job until it ends, with a status line; exit 1 unless it settled verified",
		Args:  namedArgs("JOB_ID"),
		RunE:  func(cmd *cobra.Command, args []string) error { return g.waitJob(cmd, f, args[0], limit) },
	}
	cmd.Flags().DurationVar(&limit, "timeout", 10*time.Minute, "give up waiting after this long (the job goes on)")
	return cmd
}

// waitJob follows a job to its end, printing each new event (to stderr with -o json),
// and fails unless it settled verified.
func (g *globals) waitJob(cmd *cobra.Command, f *remoteFlags, id string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), limit+time.Minute)
	defer cancel()
	out := g.stdout
	if g.json() {
		out = g.stderr
	}
	printed := 0
	j, err := f.client().WaitJob(ctx, id, func(j api.Job) {
		for _, e := range j.Events[min(printed, len(j.Events)):] {
			fmt.Fprintf(out, "  %s  %-10s %s\n", e.Time.Local().Format("15:04:05"), e.Stage, e.Message)
		}
		printed = max(printed, len(j.Events))
	})
	if err != nil {
		return f.explain(fmt.Errorf("job %s: %w", id, err))
	}
	if g.json() {
		if err := writeJSON(g.stdout, j); err != nil {
			return err
		}
	} else {
		g.printJob(j)
	}
	if j.Status != api.StatusSettled || !j.Verified {
		return fmt.Errorf("job %s ended %s, not settled verified: %s", id, j.Status, strings.TrimSpace(j.Error+" "+j.Verdict))
	}
	return nil
}

func (g *globals) printJob(j api.Job) {
	o := g.stdout
	verified := "not verified"
	if j.Verified {
		verified = "verified"
	}
	fmt.Fprintf(o, "Job:      %s — %s (%s)\n", j.ID, j.Status, verified)
	if j.Node != "" {
		fmt.Fprintf(o, "Node:     %s\n", j.Node)
	}
	if j.ResultDigest != "" {
		fmt.Fprintf(o, "Result:   %s (fetch it with `omnisync job result %s`)\n", j.ResultDigest, j.ID)
	}
	if j.Verdict != "" {
		fmt.Fprintf(o, "Verdict:  %s\n", j.Verdict)
	}
	if p := j.Payment; p != nil {
		fmt.Fprintf(o, "Payment:  node %s, burned %s, fee %s, refunded %s of a %s budget\n",
			omni(p.PaidToNode), omni(p.Burned), omni(p.ProtocolFee), omni(p.Refunded), omni(p.Budget))
	}
	if j.Error != "" {
		fmt.Fprintf(o, "Error:    %s\n", j.Error)
	}
}

// jobResult is what job result reports (--output json).
type jobResult struct {
	JobID    string `json:"job_id"`
	Status   string `json:"status"`
	Verified bool   `json:"verified"` // the chain settled the job: its validators checked the result
	Digest   string `json:"digest"`
	File     string `json:"file"`
	Rows     int    `json:"rows"`
	Cols     int    `json:"cols"`
}

func newJobResultCmd(g *globals, f *remoteFlags) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "result JOB_ID",
		Short: "Download a job's output, check it against its digest, and save it as .npy",
		Long: `Downloads the job's output with a request signed by the wallet (only the job's consumer may
read it), checks every byte against the digest the node committed on chain, and writes it to
-o DIR as JOB_ID.npy. It says whether the job is settled, that is verified by the chain's
validators, or still only the node's word.`,
		Args: namedArgs("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := f.loadKey()
			if err != nil {
				return err
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				r, err := fetchResult(ctx, c, key, args[0], dir)
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, r)
				}
				state := "VERIFIED: the chain settled the job after its validators checked the result"
				if !r.Verified {
					state = "NOT YET VERIFIED (" + r.Status + "): this is the node's word only"
				}
				fmt.Fprintf(g.stdout, "%s: %d×%d int32 matrix, digest %s matches\n%s\n", r.File, r.Rows, r.Cols, r.Digest, state)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&dir, "out", "O", ".", "directory to write JOB_ID.npy to")
	return cmd
}

func fetchResult(ctx context.Context, c *api.Client, key ed25519.PrivateKey, id, dir string) (jobResult, error) {
	auth := api.SignOutputAuth(key, string(keys.AddressOfKey(key)), id, time.Minute, time.Now())
	out, err := c.JobOutput(ctx, id, auth)
	if err != nil {
		return jobResult{}, err
	}
	if got := api.DigestOf(out.Data); got != out.Digest {
		return jobResult{}, fmt.Errorf("job %s: the output downloaded hashes to %s, not the committed %s: nothing written", id, got, out.Digest)
	}
	m, err := tensor.DecodeInt32(out.Data)
	if err != nil {
		return jobResult{}, fmt.Errorf("job %s: the output is not an int32 matrix: %w", id, err)
	}
	file := filepath.Join(dir, id+".npy")
	if err := os.WriteFile(file, m.NPY(), 0o644); err != nil {
		return jobResult{}, err
	}
	return jobResult{JobID: id, Status: out.Status, Verified: out.Verified, Digest: out.Digest, File: file, Rows: m.Rows, Cols: m.Cols}, nil
}

func newJobCancelCmd(g *globals, f *remoteFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a job no node has committed a result for; its budget is refunded in full",
		Args:  namedArgs("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				r, err := f.sendTx(ctx, c, ledger.Msg{CancelJob: &ledger.MsgCancelJob{JobID: args[0]}})
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, r)
				}
				g.printTx(r, "job %s cancelled; its escrow is refunded", args[0])
				return nil
			})
		},
	}
}

// jobListScan bounds how many of the account's transactions job list looks through.
const jobListScan = 1000

func newJobListCmd(g *globals, f *remoteFlags) *cobra.Command {
	var (
		limit  int
		status string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the wallet's jobs, newest first",
		Long: fmt.Sprintf(`Lists the jobs the wallet submitted, newest first. A job's id is derived from its
consumer and the sequence of its create_job transaction, so the list is read from the chain
by the account's sequences; it looks through the last %d transactions at most.`, jobListScan),
		Example: `  omnisync job list -w consumer --limit 5
  omnisync job list --status failed -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := f.loadKey()
			if err != nil {
				return err
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				jobs, err := listJobs(ctx, c, keys.AddressOfKey(key), limit, status)
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, jobs)
				}
				if len(jobs) == 0 {
					fmt.Fprintln(g.stdout, "no jobs")
					return nil
				}
				for _, j := range jobs {
					verified := ""
					if j.Verified {
						verified = "verified"
					}
					fmt.Fprintf(g.stdout, "%s  %-10s %-8s %s\n", j.ID, j.Status, verified, j.Node)
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many jobs")
	cmd.Flags().StringVar(&status, "status", "", "only jobs in this status: queued, assigned, running, computed, settled, failed, cancelled, expired")
	return cmd
}

// listJobs reads the consumer's jobs from its newest sequence down.
func listJobs(ctx context.Context, c *api.Client, consumer keys.Address, limit int, status string) ([]api.Job, error) {
	if limit < 1 {
		return nil, fmt.Errorf("--limit %d: want at least 1", limit)
	}
	acct, err := c.Account(ctx, string(consumer))
	if err != nil {
		return nil, err
	}
	jobs := []api.Job{}
	for seq, scanned := acct.Seq, 0; seq > 0 && scanned < jobListScan && len(jobs) < limit; scanned++ {
		seq--
		j, err := c.Job(ctx, ledger.JobID(consumer, seq))
		if errors.Is(err, api.ErrNotFound) {
			continue // that transaction was not a create_job
		}
		if err != nil {
			return nil, err
		}
		if status == "" || j.Status == status {
			j.Events = nil
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}
