package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/omnisync/omnisync/internal/zk"
)

func newJobCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit a job, follow it, fetch its verified result, cancel it",
		Long: `A consumer's jobs, through a router's REST API (--api), signed with the wallet (--wallet).

Tensor jobs take NumPy .npy files and give one back: make the inputs with
numpy.save("A.npy", a.astype(np.int8)), read the result with numpy.load("ID.npy").
An mlp-int8 model is an .npz: numpy.savez("model.npz", w0=W0, b0=b0, w1=W1, b1=b1,
shifts=[7, 6]).`,
	}
	f.addWalletFlags(cmd)
	cmd.AddCommand(newJobSubmitCmd(g, f), newJobStatusCmd(g, f), newJobWaitCmd(g, f), newJobEventsCmd(g, f), newJobLogsCmd(g, f),
		newJobResultCmd(g, f), newJobCancelCmd(g, f), newJobListCmd(g, f))
	return cmd
}

// jobSubmitFlags are job submit's settings.
type jobSubmitFlags struct {
	kernel string
	inputs []string
	model  string // mlp-int8: the model, an .npz
	// container jobs
	image        string
	imageID      string
	imageArchive string
	command      []string
	env          []string
	gpus         int
	vramGB       float64
	cpus         float64
	memoryGB     float64
	budget       string
	maxPrice     string
	timeout      time.Duration
	verify       string
	wait         bool
	async        bool   // answered once the mempool admits the escrow, not once it commits
	seq          uint64 // --async: the sequence to sign the first job with
	seqSet       bool
	count        int // submit the spec this many times, one sequence after the other
	region       string
	from         string
	maxLatMs     uint32
}

func newJobSubmitCmd(g *globals, f *remoteFlags) *cobra.Command {
	var s jobSubmitFlags
	cmd := &cobra.Command{
		Use:   "submit (--kernel matmul-int8 --input a=A.npy --input b=B.npy | --image IMG [flags] -- COMMAND ARGS...)",
		Short: "Submit a tensor or container job: escrow its budget and send its inputs",
		Long: `Signs a create_job transaction that locks --budget OMNI in escrow, and submits the job
with its inputs to the router, which places it and has it verified (--verify). It prints the
job id; with --wait it follows the job to its end. Nothing is escrowed unless the router
accepts the job.

The router answers once the escrow's block has committed; with --async, once the chain's
mempool has admitted it, a block sooner. The job then reads queued until the escrow
commits, and failed (nothing escrowed) if its block refuses it. An --async job is signed
with the first sequence past the wallet's jobs still waiting for their block (--seq picks
one), so jobs submitted one after another share blocks; --count submits the job that many
times, one sequence after the other. At most 64 jobs of a wallet wait for their block at
once: the next waits for a block to make room.

A tensor job (--kernel) takes NumPy .npy operands and is checked with Freivalds' algorithm:
matmul-int8 multiplies int8 matrices exactly, matmul-fp32 float32 ones (checked within a
rounding bound), and mlp-int8 runs an int8 model (--model, an .npz) on a batch of inputs,
checked layer by layer. With --verify zk, mlp-int8 runs on one input row and the node proves
the output with a Groth16 proof: the spec commits to the model and to the salted input, and
no validator sees either.

A container job (--image) runs the image on three nodes of distinct operators, with no
network, a read-only root filesystem and no capabilities; each --input FILE (or NAME=FILE) is
mounted read-only at /inputs/NAME, and everything the command writes to /outputs comes back
as the job's result. The nodes are paid when two of the three outputs agree (--verify
redundant, the default), so the command must be deterministic; with --verify audit one node
runs it and the chain draws a share of jobs for a validator to run again, the rest paid
unchecked. No node pulls from a registry: the image
must be on the nodes, or sent with --image-archive (a docker save tarball, up to 64 MiB).`,
		Example: `  omnisync job submit --kernel matmul-int8 --input a=A.npy --input b=B.npy --wait
  omnisync job submit --kernel mlp-int8 --model model.npz --input x=X.npy --wait
  omnisync job submit --kernel mlp-int8 --model model.npz --input x=x1.npy --verify zk --wait
  omnisync job submit --kernel matmul-int8 --input a=A.npy --input b=B.npy --budget 2 --max-price 3 -o json
  omnisync job submit --kernel matmul-int8 --input a=A.npy --input b=B.npy --async --count 20
  omnisync job submit --image-archive train.tar --image train:v1 --gpus 1 --input data.csv --wait -- /train --epochs 3`,
		Args: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash != 0 && len(args) > 0 {
				return fmt.Errorf("unexpected argument %q: a container's command goes after --", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s.command, s.seqSet = args, cmd.Flags().Changed("seq")
			if err := s.checkRepeat(); err != nil {
				return err
			}
			spec, data, err := s.spec()
			if err != nil {
				return err
			}
			key, err := f.loadKey()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
			health, err := f.client().Health(ctx)
			cancel()
			if err != nil {
				return f.explain(err)
			}
			jobs, err := g.submitJobs(cmd.Context(), f, s, key, health["chain_id"], spec, data)
			if err != nil || !s.wait {
				return errors.Join(g.printSubmitted(s, spec, jobs), err)
			}
			return g.waitJob(cmd, f, jobs[0].ID, time.Duration(spec.TimeoutSeconds)*time.Second)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&s.kernel, "kernel", tensor.KernelMatMulInt8, "built-in verifiable kernel: "+strings.Join(tensor.Kernels(), ", "))
	fl.StringArrayVar(&s.inputs, "input", nil, "tensor jobs: NAME=FILE.npy, an operand in the kernel's order (matmul-int8: a and b, int8 matrices; matmul-fp32: a and b, float32; mlp-int8: x, an int8 batch, one input per row, a single row with --verify zk); container jobs: FILE or NAME=FILE, mounted at /inputs/NAME (repeatable)")
	fl.StringVar(&s.model, "model", "", "mlp-int8 jobs: the model, "+modelFormat)
	fl.StringVar(&s.image, "image", "", "container job: the image to run, name:tag")
	fl.StringVar(&s.imageID, "image-id", "", "container job: the image id (sha256:...) every node must run; strongly advised without --image-archive")
	fl.StringVar(&s.imageArchive, "image-archive", "", "container job: a docker save tarball of the image, sent as an input and loaded by each node after checking its digest")
	fl.StringArrayVar(&s.env, "env", nil, "container job: KEY=VALUE in its environment (repeatable)")
	fl.IntVar(&s.gpus, "gpus", -1, "GPUs the job needs on one node (default: 1 for tensor jobs, 0 for containers)")
	fl.Float64Var(&s.vramGB, "vram", 0, "GiB of memory each GPU must have (0: any)")
	fl.Float64Var(&s.cpus, "cpu", 0, "container job: CPUs it may use (0: the node's default, 1)")
	fl.Float64Var(&s.memoryGB, "memory", 0, "container job: GiB of memory it may use (0: the node's default, 2 in docker, 8 in the process runtime, which also caps it at 8)")
	fl.StringVar(&s.budget, "budget", "1", "OMNI locked in escrow; what the job does not cost is refunded")
	fl.StringVar(&s.maxPrice, "max-price", "3", "highest bid per GPU-hour a node may have, OMNI")
	fl.DurationVar(&s.timeout, "timeout", 5*time.Minute, "the job's deadline: unfinished by then, it is refunded")
	fl.StringVar(&s.verify, "verify", "", "verification level: freivalds (tensor jobs, the default for them: every product checked), challenge (tensor jobs: hidden challenge rows checked, a share of jobs audited in full), audit (any job: a share re-executed by a validator, the rest paid unchecked), redundant (three nodes, paid on two matching outputs; the default for containers) or zk (mlp-int8 on one input row: the node proves its output, no validator sees the model or the input)")
	fl.BoolVar(&s.wait, "wait", false, "follow the job until it ends, with a status line")
	fl.BoolVar(&s.async, "async", false, "answer once the chain's mempool has admitted the escrow, not once its block commits it: the job reads queued until then, failed if the block refuses the escrow; signs past this wallet's jobs still waiting for their block")
	fl.Uint64Var(&s.seq, "seq", 0, "--async: sign the (first) job with this account sequence (default: the first past the committed sequence that no job waiting for its block holds)")
	fl.IntVar(&s.count, "count", 1, "submit the job this many times, each signed with the next sequence; the job ids are printed one a line (with -o json, a list)")
	fl.StringVar(&s.region, "region", "", "only nodes in this region (as nodes declare it, e.g. eu-central)")
	fl.StringVar(&s.from, "from", "", "where you are, LAT,LON in degrees (e.g. 52.52,13.40): nodes nearer score higher on latency")
	fl.Uint32Var(&s.maxLatMs, "max-latency-ms", 0, "only nodes within this estimated round trip of --from, ms (0: any)")
	return cmd
}

// spec reads the inputs and builds the job's spec.
func (s jobSubmitFlags) spec() (api.JobSpec, map[string][]byte, error) {
	container := s.image != "" || s.imageID != "" || s.imageArchive != ""
	if !container && len(s.command) > 0 {
		return api.JobSpec{}, nil, errors.New("a command after -- is for container jobs: name the image with --image")
	}
	if !container && len(s.inputs) == 0 {
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
	spec := api.JobSpec{
		Placement: placement, MaxPricePerHour: maxPrice, Budget: budget,
		TimeoutSeconds: uint64(s.timeout / time.Second), Verification: s.verify,
		Resources: api.Resources{GPUs: s.gpus, VRAMMiB: uint64(s.vramGB * 1024)},
	}
	var data map[string][]byte
	if container {
		data, err = s.containerSpec(&spec)
	} else {
		data, err = s.tensorSpec(&spec)
	}
	if err != nil {
		return api.JobSpec{}, nil, err
	}
	if err := spec.Validate(); err != nil {
		return api.JobSpec{}, nil, err
	}
	return spec, data, nil
}

// containerSpec fills in a container job: its workload, inputs and limits.
func (s jobSubmitFlags) containerSpec(spec *api.JobSpec) (map[string][]byte, error) {
	if spec.Resources.GPUs < 0 {
		spec.Resources.GPUs = 0
	}
	if spec.Verification == "" {
		spec.Verification = api.VerifyRedundant
	}
	if s.cpus < 0 || s.memoryGB < 0 {
		return nil, errors.New("--cpu and --memory must not be negative")
	}
	spec.Resources.CPUMilli, spec.Resources.MemoryMiB = uint64(s.cpus*1000), uint64(s.memoryGB*1024)
	spec.Workload = api.Workload{Kind: api.WorkloadContainer, Image: s.image, ImageID: s.imageID, Command: s.command, Env: s.env}
	data := map[string][]byte{}
	add := func(flag, name, file string) error {
		if _, dup := data[name]; dup {
			return fmt.Errorf("%s: an input named %s is given twice", flag, name)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		data[name] = raw
		spec.Inputs = append(spec.Inputs, api.Input{Name: name, Digest: api.DigestOf(raw), Size: int64(len(raw))})
		return nil
	}
	for _, in := range s.inputs {
		name, file, ok := strings.Cut(in, "=")
		if !ok {
			name, file = filepath.Base(in), in
		}
		if err := add("--input "+in, name, file); err != nil {
			return nil, err
		}
	}
	if s.imageArchive != "" {
		name := "image.tar"
		for i := 2; data[name] != nil; i++ {
			name = fmt.Sprintf("image-%d.tar", i)
		}
		if err := add("--image-archive", name, s.imageArchive); err != nil {
			return nil, err
		}
		spec.Workload.ImageArchive = name
	}
	return data, nil
}

// tensorSpec fills in a tensor job: its kernel and operands (.npy files, and for
// mlp-int8 the --model .npz), encoded as the kernel takes them.
func (s jobSubmitFlags) tensorSpec(spec *api.JobSpec) (map[string][]byte, error) {
	if s.cpus != 0 || s.memoryGB != 0 || len(s.env) > 0 {
		return nil, errors.New("--cpu, --memory and --env are for container jobs (--image)")
	}
	if spec.Resources.GPUs <= 0 {
		spec.Resources.GPUs = 1 // a kernel runs on one GPU at least
	}
	if spec.Verification == "" {
		spec.Verification = api.VerifyFreivald
	}
	if (s.model != "") != (s.kernel == tensor.KernelMLPInt8) {
		return nil, fmt.Errorf("--model is the %s kernel's model, and that kernel needs one (--kernel %s --model MODEL.npz --input x=X.npy)", tensor.KernelMLPInt8, tensor.KernelMLPInt8)
	}
	if spec.Verification == api.VerifyZK && s.kernel != tensor.KernelMLPInt8 {
		return nil, fmt.Errorf("--verify zk proves the %s kernel only", tensor.KernelMLPInt8)
	}
	spec.Workload = api.Workload{Kind: api.WorkloadTensor, Kernel: s.kernel}
	data := map[string][]byte{}
	add := func(name string, b []byte) {
		data[name] = b
		spec.Inputs = append(spec.Inputs, api.Input{Name: name, Digest: api.DigestOf(b), Size: int64(len(b))})
	}
	var model *tensor.MLP
	if s.model != "" {
		m, err := readMLPNPZ(s.model)
		if err != nil {
			return nil, fmt.Errorf("--model: %w", err)
		}
		if model = m; spec.Verification != api.VerifyZK {
			b, err := m.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("--model: %w", err)
			}
			add("model", b)
		}
	}
	for _, in := range s.inputs {
		name, file, ok := strings.Cut(in, "=")
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("--input %q: want NAME=FILE.npy", in)
		}
		if _, dup := data[name]; dup {
			return nil, fmt.Errorf("--input %s given twice, or named as the model is", name)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--input %s: %w", name, err)
		}
		b, err := s.operand(raw)
		if err != nil {
			return nil, fmt.Errorf("--input %s (%s): %w", name, file, err)
		}
		add(name, b)
	}
	if spec.Verification == api.VerifyZK {
		return zkSpec(spec, model, data)
	}
	return data, nil
}

// operand decodes one .npy operand as the kernel takes it: int8 matrices for matmul-int8
// and mlp-int8 (its batch X, one input per row), float32 ones for matmul-fp32.
func (s jobSubmitFlags) operand(raw []byte) ([]byte, error) {
	if s.kernel == tensor.KernelMatMulFloat32 {
		m, err := tensor.ParseNPYFloat32(raw)
		if err != nil {
			return nil, err
		}
		return m.MarshalBinary()
	}
	m, err := tensor.ParseNPYInt8(raw)
	if err != nil {
		return nil, err
	}
	return m.MarshalBinary()
}

// zkSpec turns an mlp-int8 job into a zk one: its one input row x is salted and, with
// the model, committed to in the spec (devnet.ZKSpec), and the model and the salted input
// become its two inputs, seen by the node that proves and by no validator.
func zkSpec(spec *api.JobSpec, model *tensor.MLP, data map[string][]byte) (map[string][]byte, error) {
	if len(spec.Inputs) != 1 {
		return nil, errors.New("--verify zk proves one input: give it as --input x=X.npy, a 1×inputs int8 matrix")
	}
	x, err := tensor.DecodeInt8(data[spec.Inputs[0].Name])
	if err != nil {
		return nil, err
	}
	if x.Rows != 1 {
		return nil, fmt.Errorf("--verify zk proves one input row; --input %s has %d (submit one job per row, or use --verify freivalds for a batch)", spec.Inputs[0].Name, x.Rows)
	}
	zs, zdata, err := devnet.ZKSpec(model, x.Data)
	if err != nil {
		return nil, err
	}
	spec.Workload, spec.Inputs, spec.ZK = zs.Workload, zs.Inputs, zs.ZK
	return zdata, nil
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
	// The router records how the chain decided a moment after the chain shows it: give
	// that last event a moment to arrive.
	for try := 0; try < 4 && !endsWithOutcome(j); try++ {
		time.Sleep(250 * time.Millisecond)
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		if again, err := f.client().Job(rctx, id); err == nil {
			j = again
		}
		rcancel()
	}
	for _, e := range j.Events[min(printed, len(j.Events)):] {
		fmt.Fprintf(out, "  %s  %-10s %s\n", e.Time.Local().Format("15:04:05"), e.Stage, e.Message)
	}
	if g.json() {
		if err := writeJSON(g.stdout, j); err != nil {
			return err
		}
	} else {
		g.printJob(j)
	}
	if settledUnaudited(j.Status, j.Verified, j.Verification) {
		fmt.Fprintf(g.stderr, "job %s settled unaudited: the chain did not draw it for audit, so its result is its node's word (level %s)\n", id, j.Verification)
		return nil
	}
	if j.Status != api.StatusSettled || !j.Verified {
		why := strings.TrimSpace(j.Error + " " + j.Verdict)
		if why == "" && len(j.Events) > 0 {
			why = j.Events[len(j.Events)-1].Message
		}
		return fmt.Errorf("job %s ended %s, not settled verified: %s", id, j.Status, why)
	}
	return nil
}

// settledUnaudited reports whether a job is an audit job that settled without a check: the
// level's normal outcome for most jobs, which will never read as verified.
func settledUnaudited(status string, verified bool, level string) bool {
	return status == api.StatusSettled && !verified && level == api.VerifyAudit
}

// endsWithOutcome reports whether a job's events end with how it was decided.
func endsWithOutcome(j api.Job) bool {
	if len(j.Events) == 0 {
		return false
	}
	switch j.Events[len(j.Events)-1].Stage {
	case "settled", "refunded", "failed":
		return true
	}
	return false
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
	for _, r := range j.Replicas {
		paid := "not paid"
		if r.Paid > 0 {
			paid = "paid " + omni(r.Paid)
		}
		if r.Reward > 0 {
			paid += " + network reward " + omni(r.Reward)
		}
		fmt.Fprintf(o, "Replica:  %s  result %s  %s\n", r.Node, shortDigest(r.ResultDigest), paid)
	}
	if j.ResultDigest != "" {
		fmt.Fprintf(o, "Result:   %s (fetch it with `omnisync job result %s`)\n", j.ResultDigest, j.ID)
	}
	if j.Verdict != "" {
		fmt.Fprintf(o, "Verdict:  %s\n", j.Verdict)
	}
	if p := j.Payment; p != nil {
		fmt.Fprintf(o, "Payment:  nodes %s, burned %s, fee %s, refunded %s of a %s budget\n",
			omni(p.PaidToNode), omni(p.Burned), omni(p.ProtocolFee), omni(p.Refunded), omni(p.Budget))
		if p.NetworkReward > 0 {
			fmt.Fprintf(o, "Reward:   %s to the nodes from the network-rewards pool, not from the budget\n", omni(p.NetworkReward))
		}
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
	File     string `json:"file,omitempty"` // a tensor job's JOB_ID.npy
	Kind     string `json:"kind,omitempty"` // what File holds (tensorOutput)
	Rows     int    `json:"rows,omitempty"`
	Cols     int    `json:"cols,omitempty"`
	// A container job's output is unpacked into Dir: exit_code and outputs/<Files>.
	Dir      string   `json:"dir,omitempty"`
	ExitCode *int     `json:"exit_code,omitempty"`
	Files    []string `json:"files,omitempty"`
}

func newJobResultCmd(g *globals, f *remoteFlags) *cobra.Command {
	var (
		dir        string
		unverified bool
	)
	cmd := &cobra.Command{
		Use:   "result JOB_ID",
		Short: "Download a job's output, check it against its digest, and save it",
		Long: `Downloads the job's output with a request signed by the wallet (only the job's consumer may
read it) and checks every byte against the digest committed on chain. A tensor job's output
is written to DIR as JOB_ID.npy (the product; for mlp-int8 the model's output rows, without
the accumulators or the proof the validators checked); a container job's archive is unpacked into DIR/JOB_ID/ (its
exit_code, and outputs/ as the job left it; no file is overwritten). An output the chain has
not settled as verified (by the validators, or by matching replicas) is a node's word only:
it is saved only with --allow-unverified, and marked so.`,
		Args: namedArgs("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := f.loadKey()
			if err != nil {
				return err
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				r, err := fetchResult(ctx, c, key, args[0], dir, unverified)
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, r)
				}
				state := "VERIFIED: the chain settled the job on its checked result"
				if !r.Verified {
					state = "NOT YET VERIFIED (" + r.Status + "): this is a node's word only"
				}
				if r.ExitCode != nil {
					fmt.Fprintf(g.stdout, "%s: exit code %d, %d output files, digest %s matches\n", r.Dir, *r.ExitCode, len(r.Files), r.Digest)
					for _, f := range r.Files {
						fmt.Fprintf(g.stdout, "  outputs/%s\n", f)
					}
					fmt.Fprintln(g.stdout, state)
					return nil
				}
				fmt.Fprintf(g.stdout, "%s: %d×%d %s, digest %s matches\n%s\n", r.File, r.Rows, r.Cols, r.Kind, r.Digest, state)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&dir, "out", "O", ".", "directory to write JOB_ID.npy, or a container job's JOB_ID/ directory, to (made if missing)")
	cmd.Flags().BoolVar(&unverified, "allow-unverified", false, "save the output even though the chain has not settled it as verified yet")
	return cmd
}

func fetchResult(ctx context.Context, c *api.Client, key ed25519.PrivateKey, id, dir string, allowUnverified bool) (jobResult, error) {
	auth := api.SignOutputAuth(key, string(keys.AddressOfKey(key)), id, time.Minute, time.Now())
	out, err := c.JobOutput(ctx, id, auth)
	if err != nil {
		return jobResult{}, err
	}
	if got := api.DigestOf(out.Data); got != out.Digest {
		return jobResult{}, fmt.Errorf("job %s: the output downloaded hashes to %s, not the committed %s: nothing written", id, got, out.Digest)
	}
	if !out.Verified && !allowUnverified && out.Status == api.StatusSettled {
		return jobResult{}, fmt.Errorf("job %s settled without a check (an audit job the chain did not draw for audit): its output is its node's word and stays so; nothing written (pass --allow-unverified to save it)", id)
	}
	if !out.Verified && !allowUnverified {
		return jobResult{}, fmt.Errorf("job %s is %s: its output is not verified yet, only a node's word; nothing written (wait for it with `omnisync job wait %s`, or pass --allow-unverified)", id, out.Status, id)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return jobResult{}, err
	}
	r := jobResult{JobID: id, Status: out.Status, Verified: out.Verified, Digest: out.Digest}
	if co, err := api.UnpackOutput(out.Data, 1<<16, 1<<40); err == nil {
		r.Dir = filepath.Join(dir, id)
		if err := api.WriteOutput(r.Dir, co); errors.Is(err, fs.ErrExist) {
			return jobResult{}, fmt.Errorf("job %s: %s holds this job's output already; nothing was overwritten (remove it, or pick another directory with -O)", id, r.Dir)
		} else if err != nil {
			return jobResult{}, fmt.Errorf("job %s: %w", id, err)
		}
		r.ExitCode = &co.ExitCode
		for _, f := range co.Files {
			r.Files = append(r.Files, f.Path)
		}
		return r, nil
	}
	npy, kind, rows, cols, err := tensorOutput(out.Data)
	if err != nil {
		return jobResult{}, fmt.Errorf("job %s: %w", id, err)
	}
	file := filepath.Join(dir, id+".npy")
	if err := os.WriteFile(file, npy, 0o644); err != nil {
		return jobResult{}, err
	}
	r.File, r.Kind, r.Rows, r.Cols = file, kind, rows, cols
	return r, nil
}

// tensorOutput turns a tensor job's output into the .npy file job result saves: the
// product of matmul-int8 (int32) or matmul-fp32 (float32), or the output rows of an
// mlp-int8 batch (its accumulators, which the validators checked, are left out) or of a
// zk job (its proof, which the committee verified, is left out). kind says which.
func tensorOutput(data []byte) (npy []byte, kind string, rows, cols int, err error) {
	if m, err := tensor.DecodeInt32(data); err == nil {
		return m.NPY(), "int32 matrix", m.Rows, m.Cols, nil
	}
	if m, err := tensor.DecodeFloat32(data); err == nil {
		return m.NPY(), "float32 matrix", m.Rows, m.Cols, nil
	}
	if t, err := tensor.DecodeMLPTrace(data); err == nil {
		return t.Output.NPY(), "int8 MLP output", t.Output.Rows, t.Output.Cols, nil
	}
	if res, err := zk.DecodeResult(data); err == nil {
		m := &tensor.Int8Matrix{Rows: 1, Cols: len(res.Output), Data: res.Output}
		return m.NPY(), "int8 MLP output, proved", 1, m.Cols, nil
	}
	return nil, "", 0, 0, errors.New("the output is neither a container's archive nor a tensor kernel's output (int32 or float32 matrix, MLP trace, zk result)")
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
		after  string
		chain  bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the wallet's jobs, newest first",
		Long: fmt.Sprintf(`Lists the jobs the wallet submitted, newest first, with a request signed by the wallet
(GET /v1/jobs: nobody lists another account's jobs). The routers remember finished jobs
for ten minutes; --chain reads older ones from the chain instead: a job's id is derived
from its consumer and the sequence of its create_job transaction, so that
list is read by the account's sequences, through the last %d transactions at most. A
REST API without a router (a chain node's) is read that way too.`, jobListScan),
		Example: `  omnisync job list -w consumer --limit 5
  omnisync job list --status failed -o json
  omnisync job list --limit 20 --after job-1978304546b1edf8   # the next page`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := f.loadKey()
			if err != nil {
				return err
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				var list api.JobList
				var err error
				if !chain {
					auth := api.SignJobListAuth(key, string(keys.AddressOfKey(key)), time.Minute, time.Now())
					list, err = c.Jobs(ctx, auth, api.JobQuery{Status: status, Limit: limit, After: after})
					if errors.Is(err, api.ErrUnavailable) || errors.Is(err, api.ErrNotFound) {
						fmt.Fprintf(g.stderr, "note: %s keeps no job list (%v); reading the chain instead\n", f.api, err)
						chain = true
					} else if err != nil {
						return err
					}
				}
				if chain {
					if after != "" {
						return errors.New("--after pages the router's list; with --chain, use --limit")
					}
					if list.Jobs, err = listJobs(ctx, c, keys.AddressOfKey(key), limit, status); err != nil {
						return err
					}
				}
				jobs := list.Jobs
				if g.json() {
					return writeJSON(g.stdout, list)
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
					fmt.Fprintf(g.stdout, "%s  %-10s %-8s %-9s %s\n", j.ID, j.Status, verified, j.Kind, j.Node)
				}
				if list.Next != "" {
					fmt.Fprintf(g.stderr, "more: omnisync job list --after %s\n", list.Next)
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many jobs (up to 500)")
	cmd.Flags().StringVar(&after, "after", "", "list the jobs after this one (the previous page's last)")
	cmd.Flags().BoolVar(&chain, "chain", false, "read the jobs from the chain, by the account's transactions, not from the routers")
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
