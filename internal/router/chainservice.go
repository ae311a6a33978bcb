package router

import (
	"context"
	"fmt"
	"io"

	"github.com/omnisync/omnisync/api"
)

// ChainService is the REST API of a chain node that runs no router (`omnisync chain start`):
// it answers every view of chain state and relays signed transactions, so wallet, stake,
// gov and token commands work against any full node. Jobs go through a router, which holds
// their inputs, progress and outputs: intake, uploads and outputs here are refused with
// api.ErrUnavailable naming where to go instead, and a job shows only its chain record.
type ChainService struct {
	ChainViews
}

// errNoRouter says where jobs go; it travels as 503.
var errNoRouter = fmt.Errorf("%w: this is a chain node's REST API, which runs no router: submit jobs to a router's REST API (`omnisync router run` serves one; point --api at it)", api.ErrUnavailable)

// SubmitJob is refused: a chain node does not place jobs.
func (ChainService) SubmitJob(context.Context, api.SubmitJobRequest) (api.Job, error) {
	return api.Job{}, errNoRouter
}

// UploadInput is refused: inputs go to the router that took the job.
func (ChainService) UploadInput(context.Context, string, string, io.Reader) error { return errNoRouter }

// JobOutput is refused: outputs live in the object store of the router that ran the job.
func (ChainService) JobOutput(context.Context, string, api.OutputAuth) (api.JobOutput, error) {
	return api.JobOutput{}, fmt.Errorf("%w (outputs are kept by the router that ran the job: fetch them from its REST API)", errNoRouter)
}

// Jobs is refused: a job's progress is kept by the routers, not the chain.
func (ChainService) Jobs(context.Context, api.OutputAuth, api.JobQuery) (api.JobList, error) {
	return api.JobList{}, fmt.Errorf("%w (job lists are kept by the routers: ask a router's REST API, or read the chain with `omnisync job list`)", errNoRouter)
}

// JobLogs is refused: logs are kept by the router running the job.
func (ChainService) JobLogs(context.Context, string, api.OutputAuth, string, int64) (api.JobLogs, error) {
	return api.JobLogs{}, fmt.Errorf("%w (logs are kept by the router that runs the job: ask its REST API)", errNoRouter)
}

// Stats is refused: only a router knows its work.
func (ChainService) Stats(context.Context) (api.RouterStats, error) {
	return api.RouterStats{}, errNoRouter
}
