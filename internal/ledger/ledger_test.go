package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestTxSignatureChecks(t *testing.T) {
	h := newHarness(t, testGenesis())
	transfer := Msg{Transfer: &MsgTransfer{To: addr(node1Key), Amount: 100}}
	good := h.sign(consumerKey, transfer)

	forged := append([]byte{}, good...)
	forged[40] ^= 0xff // corrupt the signature

	wrongKey := append([]byte{}, good...) // claims to be the stranger, signed by the consumer
	copy(wrongKey[1:33], strangerKey.Public().(ed25519.PublicKey))

	wrongSeq, _ := SignTx(consumerKey, testChain, 7, transfer)
	wrongChain, _ := SignTx(consumerKey, "other-chain", 0, transfer)

	cases := []struct {
		name string
		tx   []byte
		code Code
		err  error
	}{
		{"corrupted signature", forged, CodeBadSignature, ErrBadSignature},
		{"signed by another key", wrongKey, CodeBadSignature, ErrBadSignature},
		{"wrong sequence", wrongSeq, CodeWrongSequence, ErrWrongSequence},
		{"wrong chain id", wrongChain, CodeWrongChain, ErrWrongChain},
		{"truncated", good[:50], CodeDecode, ErrDecode},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.stateHash()
			if r := h.app.CheckTx(c.tx); r.Code != c.code {
				t.Fatalf("CheckTx code = %d (%s), want %d", r.Code, r.Log, c.code)
			}
			r := h.block(c.tx)[0]
			if r.Code != c.code {
				t.Fatalf("FinalizeBlock code = %d (%s), want %d", r.Code, r.Log, c.code)
			}
			if !errors.Is(ErrorFor(r.Code, r.Log), c.err) {
				t.Fatalf("ErrorFor(%d) does not wrap %v", r.Code, c.err)
			}
			if !bytes.Equal(before, h.stateHash()) {
				t.Fatal("a rejected tx changed state")
			}
		})
	}
	// The genuine tx still works afterwards, and replaying it is rejected.
	if r := h.block(good)[0]; r.Code != CodeOK {
		t.Fatalf("good tx: %d %s", r.Code, r.Log)
	}
	if r := h.block(good)[0]; r.Code != CodeWrongSequence {
		t.Fatalf("replayed tx: code %d, want CodeWrongSequence", r.Code)
	}
}

func TestCheckTxAdmitsConsecutiveSequences(t *testing.T) {
	h := newHarness(t, testGenesis())
	m := Msg{Transfer: &MsgTransfer{To: addr(node1Key), Amount: 1}}
	tx0, _ := SignTx(consumerKey, testChain, 0, m)
	tx1, _ := SignTx(consumerKey, testChain, 1, m)
	if r := h.app.CheckTx(tx0); r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	if r := h.app.CheckTx(tx1); r.Code != CodeOK {
		t.Fatalf("second pending tx rejected: %s", r.Log)
	}
	if r := h.app.CheckTx(tx1); r.Code != CodeWrongSequence {
		t.Fatalf("duplicate pending tx: code %d", r.Code)
	}
	for _, r := range h.block(tx0, tx1) {
		if r.Code != CodeOK {
			t.Fatal(r.Log)
		}
	}
}

func TestTransferBurnsTwoPercent(t *testing.T) {
	h := newHarness(t, testGenesis())
	before := h.supply()
	h.mustDo(consumerKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: 1_000 * omni}})
	if got := h.balance(strangerKey); got != 980*omni {
		t.Fatalf("recipient got %d, want %d", got, 980*omni)
	}
	if got := h.balance(consumerKey); got != 9_000*omni {
		t.Fatalf("sender has %d, want %d", got, 9_000*omni)
	}
	if burned := h.supply().Burned - before.Burned; burned != 20*omni {
		t.Fatalf("burned %d, want %d", burned, 20*omni)
	}
	h.checkBooks()
}

// rejectionHarness is a chain with something for every rejection to refuse: two
// validators (committees of one), a vesting team member, a registered node, a job awaiting
// verification, a closed proposal (1) and an open one (2) the first validator voted on, and
// a transfer already committed (to replay).
func rejectionHarness(t *testing.T) (h *harness, replay []byte, outsider ed25519.PrivateKey, job string) {
	t.Helper()
	g := testGenesis()
	g.Params.CommitteeSize = 1
	g.Params.GovVotingBlocks = 40
	g.Validators = append(g.Validators, Validator{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 10_000 * omni})
	g.Accounts = append(g.Accounts, GenesisAccount{Address: addr(vesterKey), Balance: 50_000 * omni, Vesting: &vesterGrant})
	h = newHarness(t, withSupply(g))
	replay = h.sign(consumerKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: omni}})
	if r := h.block(replay)[0]; r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	h.mustDo(node1Key, registerMsg)
	job = runJob(t, h, omni, 1000)
	committee := query[Job](h, "job/"+job).Committee
	outsider = validatorKey
	if len(committee) != 1 {
		t.Fatalf("committee %v, want one validator", committee)
	} else if committee[0] == addr(validatorKey) {
		outsider = validator2Key
	}
	h.mustDo(validatorKey, Msg{Propose: &MsgPropose{Title: "closes unvoted", Params: map[string]json.RawMessage{"burn_bp": json.RawMessage("250")}}})
	for range 40 {
		h.block()
	}
	if p := query[Proposal](h, "proposal/1"); p.Status != ProposalRejected {
		t.Fatalf("proposal 1 is %s", p.Status)
	}
	h.mustDo(validatorKey, Msg{Propose: &MsgPropose{Title: "stays open", Params: map[string]json.RawMessage{"burn_bp": json.RawMessage("250")}}})
	h.mustDo(validatorKey, Msg{Vote: &MsgVote{ProposalID: 2, Option: VoteYes}})
	return h, replay, outsider, job
}

func TestRejectionsChangeNothing(t *testing.T) {
	h, replay, outsider, job := rejectionHarness(t)
	transfer := Msg{Transfer: &MsgTransfer{To: addr(node1Key), Amount: 100}}
	vote := func(id uint64) Msg { return Msg{Vote: &MsgVote{ProposalID: id, Option: VoteYes}} }
	cases := []struct {
		name string
		key  ed25519.PrivateKey
		msg  Msg
		raw  func() []byte // a hand-made tx instead of key signing msg
		code Code
		log  string // what the message must say
	}{
		{"transfer more than balance", strangerKey, Msg{Transfer: &MsgTransfer{To: addr(node1Key), Amount: 2 * omni}}, nil, CodeInsufficientFunds, "needs 2 OMNI"},
		{"zero transfer", consumerKey, Msg{Transfer: &MsgTransfer{To: addr(node1Key), Amount: 0}}, nil, CodeInvalidAmount, "must be positive"},
		{"bad recipient", consumerKey, Msg{Transfer: &MsgTransfer{To: "nope", Amount: 5}}, nil, CodeInvalidMsg, "to:"},
		{"stake below minimum", node2Key, Msg{RegisterNode: &MsgRegisterNode{Stake: 499 * omni, PricePerHour: 1, Hardware: registerMsg.RegisterNode.Hardware}}, nil, CodeStakeTooLow, "at least 500 OMNI"},
		{"job budget above balance", strangerKey, createMsg(5 * omni), nil, CodeInsufficientFunds, "needs 5 OMNI"},
		{"assign by non-router", consumerKey, Msg{AssignJob: &MsgAssignJob{JobID: "job-0000000000000000", Node: addr(node1Key)}}, nil, CodeUnauthorized, "not a router"},
		{"attest by non-validator", consumerKey, Msg{Attest: &MsgAttest{JobID: "job-0000000000000000", ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}}, nil, CodeUnauthorized, "not an active validator"},
		{"cancel unknown job", consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: "job-0000000000000000"}}, nil, CodeNotFound, "job-0000000000000000"},

		{"bad signature", nil, Msg{}, func() []byte {
			tx := h.sign(consumerKey, transfer)
			tx[40] ^= 1
			return tx
		}, CodeBadSignature, "signature does not match"},
		{"replayed tx (wrong sequence)", nil, Msg{}, func() []byte { return replay }, CodeWrongSequence, "expects sequence"},
		{"wrong chain id", nil, Msg{}, func() []byte {
			tx, _ := SignTx(consumerKey, "other-chain", h.seqs[addr(consumerKey)], transfer)
			return tx
		}, CodeWrongChain, `"other-chain"`},
		{"overflowing stake", validatorKey, Msg{Stake: &MsgStake{Role: RoleValidator, Amount: ^uint64(0)}}, nil, CodeOverflow, "overflow"},
		{"transfer of 2^64-1", consumerKey, Msg{Transfer: &MsgTransfer{To: addr(node1Key), Amount: ^uint64(0)}}, nil, CodeInsufficientFunds, "needs"},
		{"moving vesting tokens", vesterKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: 10_001 * omni}}, nil, CodeLocked, "still vesting"},
		{"escrowing vesting tokens", vesterKey, createMsg(20_000 * omni), nil, CodeLocked, "still vesting"},
		{"validator stake below minimum", consumerKey, Msg{Stake: &MsgStake{Role: RoleValidator, Amount: 5_000 * omni, PubKey: pub(key(30))}}, nil, CodeStakeTooLow, "at least 10000 OMNI"},
		{"validator with a taken consensus key", consumerKey, Msg{Stake: &MsgStake{Role: RoleValidator, Amount: 10_000 * omni, PubKey: pub(cons2Key)}}, nil, CodeDuplicate, "already belongs"},
		{"validator unstake leaving less than the minimum", validatorKey, Msg{Unstake: &MsgUnstake{Role: RoleValidator, Amount: omni}}, nil, CodeStakeTooLow, "below the validator minimum"},
		{"node unstake leaving less than the minimum", node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: omni}}, nil, CodeStakeTooLow, "below the node minimum"},
		{"unstake more than staked", node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: 501 * omni}}, nil, CodeInsufficientFunds, "cannot unstake"},
		{"propose without stake", strangerKey, Msg{Propose: &MsgPropose{Title: "t", Spend: &Spend{To: addr(strangerKey), Amount: 1}}}, nil, CodeUnauthorized, "only stakers"},
		{"vote without stake", strangerKey, vote(2), nil, CodeUnauthorized, "no stake to vote"},
		{"double vote", validatorKey, vote(2), nil, CodeDuplicate, "already voted"},
		{"unknown proposal", validatorKey, vote(99), nil, CodeNotFound, "proposal 99"},
		{"vote after close", validator2Key, vote(1), nil, CodeBadState, "has closed"},
		{"attest outside the committee", outsider, Msg{Attest: &MsgAttest{JobID: job, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}}, nil, CodeUnauthorized, "verification committee"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.stateHash()
			var r TxResult
			if c.raw != nil {
				tx := c.raw()
				if cr := h.app.CheckTx(tx); cr.Code != c.code {
					t.Fatalf("CheckTx code = %d (%s), want %d", cr.Code, cr.Log, c.code)
				}
				r = h.block(tx)[0]
			} else {
				r = h.do(c.key, c.msg)
			}
			if r.Code != c.code {
				t.Fatalf("code = %d (%s), want %d", r.Code, r.Log, c.code)
			}
			if r.Log == "" {
				t.Fatal("rejection without a message")
			}
			if !strings.Contains(r.Log, c.log) {
				t.Fatalf("message %q does not say %q", r.Log, c.log)
			}
			if !errors.Is(ErrorFor(r.Code, r.Log), codeSentinel(c.code)) {
				t.Fatalf("ErrorFor(%d) does not wrap its sentinel", r.Code)
			}
			if !bytes.Equal(before, h.stateHash()) {
				t.Fatal("rejected tx changed state")
			}
		})
	}
	h.checkBooks()
}

// codeSentinel is the sentinel error a result code stands for.
func codeSentinel(c Code) error {
	for _, e := range codeOf {
		if e.code == c {
			return e.err
		}
	}
	return nil
}

// runJob takes a job through creation, assignment and result commitment.
func runJob(t *testing.T, h *harness, budget, gpuMillis uint64) string {
	t.Helper()
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(budget))
	h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key), ScoreBP: 8000}})
	h.mustDo(node1Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: gpuMillis}})
	return id
}

func TestJobSettlesWithExactSplit(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	consumer0, node0, val0, sp0 := h.balance(consumerKey), h.balance(node1Key), h.balance(validatorKey), h.supply()

	// 2 OMNI/h for 90 s of GPU time = 0.05 OMNI = 50,000 uomni; the emission of 1 OMNI per
	// verified GPU-hour adds 25,000 uomni from the network-rewards pool.
	id := runJob(t, h, 1*omni, 90_000)
	if got := h.balance(consumerKey); got != consumer0-1*omni {
		t.Fatalf("escrow not locked: consumer has %d", got)
	}
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})

	j := query[Job](h, "job/"+id)
	want := Settlement{BilledMillis: 90_000, Cost: 50_000, Burned: 1_000, Fee: 2_500, Paid: 46_500, Refunded: 950_000, Reward: 25_000, Height: j.Settlement.Height}
	if j.Status != JobSettled || !reflect.DeepEqual(*j.Settlement, want) {
		t.Fatalf("job %s %+v, want settled %+v", j.Status, j.Settlement, want)
	}
	if got := h.balance(node1Key) - node0; got != 46_500+25_000 {
		t.Fatalf("node paid %d, want 46500 + 25000 reward", got)
	}
	// The fee of 2,500 splits 10% to validators (one, so all of it), 15% to buy-backs, the
	// rest to the ecosystem treasury.
	if got := h.balance(validatorKey) - val0; got != 250 {
		t.Fatalf("validator fee share %d, want 250", got)
	}
	if got := consumer0 - h.balance(consumerKey); got != 50_000 {
		t.Fatalf("consumer spent %d, want 50000", got)
	}
	sp := h.supply()
	if sp.Burned-sp0.Burned != 1_000 || sp.Pools[PoolBuyback]-sp0.Pools[PoolBuyback] != 375 ||
		sp.Pools[PoolEcosystem]-sp0.Pools[PoolEcosystem] != 1_875 || sp.Escrowed != 0 ||
		sp0.Pools[PoolRewards]-sp.Pools[PoolRewards] != 25_000 {
		t.Fatalf("supply after settlement: %+v", sp)
	}
	h.checkBooks()
}

func TestFailedVerificationRefundsInFull(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	consumer0, node0, val0, burned0 := h.balance(consumerKey), h.balance(node1Key), h.balance(validatorKey), h.supply().Burned
	id := runJob(t, h, 1*omni, 1000)
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: false, Reason: "freivalds mismatch at row 3"}})
	j := query[Job](h, "job/"+id)
	if j.Status != JobFailed || j.Settlement.Refunded != 1*omni {
		t.Fatalf("job %s %+v", j.Status, j.Settlement)
	}
	if h.balance(consumerKey) != consumer0 || h.balance(node1Key) != node0 {
		t.Fatal("failed job moved the consumer's or the node's balance")
	}
	if h.balance(validatorKey)-val0 != 25*omni || h.supply().Burned-burned0 != 25*omni {
		t.Fatal("slash not split between the verifier and the burn")
	}
	// The node loses 10% of its 500 OMNI stake: half to the validator that caught it, half
	// burned; below the minimum it can take no more work.
	n := query[Node](h, "node/"+string(addr(node1Key)))
	if n.JobsFailed != 1 || n.Stake != 450*omni || n.Status != NodeInactive {
		t.Fatalf("node record %+v", n)
	}
	// A second verdict on a closed job is rejected.
	if r := h.do(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}}); r.Code != CodeBadState {
		t.Fatalf("attest on closed job: code %d", r.Code)
	}
	h.checkBooks()
}

func TestJobRules(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(omni))
	if r := h.do(node2Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA}}); r.Code != CodeBadState {
		t.Fatalf("result before assignment: code %d", r.Code)
	}
	if r := h.do(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node2Key)}}); r.Code != CodeNotFound {
		t.Fatalf("assign to unregistered node: code %d", r.Code)
	}
	h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key)}})
	if r := h.do(node2Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA}}); r.Code != CodeUnauthorized {
		t.Fatalf("result from another node: code %d", r.Code)
	}
	h.mustDo(node1Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA}})
	if r := h.do(consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}); r.Code != CodeBadState {
		t.Fatalf("cancel after result: code %d", r.Code)
	}
	other := "sha256:" + "b" + digestA[8:]
	if r := h.do(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: other, Pass: true, Ops: ampleOps, Transcript: aTranscript}}); r.Code != CodeInvalidMsg {
		t.Fatalf("attest of a different digest: code %d", r.Code)
	}
	h.checkBooks()
}

func TestRouterReleasesAJobItCannotPlace(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	c0 := h.balance(consumerKey)
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(omni))
	if r := h.do(node1Key, Msg{CancelJob: &MsgCancelJob{JobID: id}}); r.Code != CodeUnauthorized {
		t.Fatalf("cancel by a node: code %d, want unauthorized", r.Code)
	}
	h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key)}})
	h.mustDo(routerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}})
	if h.balance(consumerKey) != c0 {
		t.Fatalf("router release refunded %d of the budget", h.balance(consumerKey)-(c0-omni))
	}
	// Work already committed cannot be taken back by a router.
	id = JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(omni))
	h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key)}})
	h.mustDo(node1Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA}})
	if r := h.do(routerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}); r.Code != CodeBadState {
		t.Fatalf("router cancel after a result: code %d, want bad state", r.Code)
	}
	h.checkBooks()
}

func TestCancelAndExpiryRefund(t *testing.T) {
	h := newHarness(t, testGenesis())
	c0 := h.balance(consumerKey)
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(omni))
	h.mustDo(consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}})
	if h.balance(consumerKey) != c0 {
		t.Fatal("cancel did not refund")
	}

	m := createMsg(2 * omni)
	m.CreateJob.TimeoutSeconds = 3
	id = JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, m)
	for i := 0; i < 4; i++ {
		h.block()
	}
	if j := query[Job](h, "job/"+id); j.Status != JobExpired {
		t.Fatalf("job status %s after its deadline", j.Status)
	}
	if h.balance(consumerKey) != c0 {
		t.Fatal("expiry did not refund")
	}
	h.checkBooks()
}

func TestSettlementNeverExceedsBudget(t *testing.T) {
	p := DefaultParams()
	for _, c := range []struct{ price, millis, budget, timeout uint64 }{
		{2 * omni, 3_600_000, omni, 7200},    // cost 2 OMNI, budget 1: capped
		{1, 1, 1, 1},                         // dust
		{^uint64(0) / 2, 1000, 5 * omni, 10}, // absurd price
		{3, 10, 100, 1},
	} {
		s, err := SettlementFor(p, Job{PricePerHour: c.price, GPUMillis: c.millis, Budget: c.budget, TimeoutSeconds: c.timeout})
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if s.Paid+s.Burned+s.Fee+s.Refunded != c.budget || s.Cost > c.budget {
			t.Fatalf("%+v: settlement %+v does not divide the budget", c, s)
		}
	}
}

func TestGenesisMustAddUp(t *testing.T) {
	g := testGenesis()
	g.Supply++
	if err := g.Validate(); !errors.Is(err, ErrInvalidAmount) {
		t.Fatalf("err = %v", err)
	}
	g = testGenesis()
	g.Accounts = append(g.Accounts, g.Accounts[0])
	if err := g.Validate(); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("err = %v", err)
	}
}

func TestRestartResumes(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(consumerKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: omni}})
	height, hash := h.app.Info()
	app2, err := New(h.store)
	if err != nil {
		t.Fatal(err)
	}
	h2, hash2 := app2.Info()
	if h2 != height || !bytes.Equal(hash, hash2) || app2.ChainID() != testChain {
		t.Fatalf("reopened at %d %x %q, want %d %x", h2, hash2, app2.ChainID(), height, hash)
	}
}
