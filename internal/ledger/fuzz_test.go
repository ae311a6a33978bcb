package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/omnisync/omnisync/internal/keys"
)

// signRaw frames and signs an arbitrary body, as SignTx does for a JSON one.
func signRaw(k ed25519.PrivateKey, body []byte) []byte {
	raw := append([]byte{txVersion}, pub(k)...)
	raw = append(raw, ed25519.Sign(k, append(append([]byte{}, signDomain...), body...))...)
	return append(raw, body...)
}

// FuzzVerifySignature: a signed transaction verifies; flipping any bits of its public key,
// signature or body makes it fail with ErrBadSignature, never verify.
func FuzzVerifySignature(f *testing.F) {
	good, _ := SignTx(consumerKey, testChain, 3, createMsg(5))
	f.Add(good[txHeader:], uint16(0), byte(1))     // the key
	f.Add(good[txHeader:], uint16(40), byte(0x80)) // the signature
	f.Add(good[txHeader:], uint16(200), byte(0xff))
	f.Add([]byte("x"), uint16(96), byte(1))
	f.Fuzz(func(t *testing.T, body []byte, pos uint16, flip byte) {
		if len(body) == 0 || txHeader+len(body) > MaxTxBytes {
			return
		}
		raw := signRaw(strangerKey, body)
		if p, b, err := verifySignature(raw); err != nil || !bytes.Equal(p, pub(strangerKey)) || !bytes.Equal(b, body) {
			t.Fatalf("a genuine signature does not verify: %v", err)
		}
		mutated := append([]byte{}, raw...)
		mutated[1+int(pos)%(len(raw)-1)] ^= flip // anything after the version byte
		_, _, err := verifySignature(mutated)
		switch {
		case flip == 0 && err != nil:
			t.Fatalf("unchanged tx rejected: %v", err)
		case flip != 0 && !errors.Is(err, ErrBadSignature):
			t.Fatalf("tx with byte %d flipped: err = %v, want ErrBadSignature", 1+int(pos)%(len(raw)-1), err)
		}
	})
}

// FuzzParseGenesis: whatever ParseGenesis accepts is valid, survives a JSON round trip
// unchanged, initialises a chain, and gives books that add up to the declared supply.
func FuzzParseGenesis(f *testing.F) {
	tok, err := Tokenomics(genesisUnix, DefaultParams(), Beneficiaries{
		Team: []keys.Address{addr(key(40))}, Investors: []keys.Address{addr(key(41)), addr(key(42))},
		PublicSale: []keys.Address{addr(key(43))}, Liquidity: []keys.Address{addr(key(44))},
		Validators: testGenesis().Validators,
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, g := range []Genesis{testGenesis(), richGenesis(), tok} {
		b, _ := json.Marshal(g)
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"supply":1,"pools":{"x":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGenesis(b)
		if err != nil {
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("accepted genesis is invalid: %v", err)
		}
		again, _ := json.Marshal(g)
		if g2, err := ParseGenesis(again); err != nil || !reflect.DeepEqual(g, g2) {
			t.Fatalf("genesis changes in a JSON round trip: %v\n%+v\n%+v", err, g, g2)
		}
		st := newMemStore()
		app, _ := New(st)
		_, vals, err := app.InitChain(testChain, b)
		if err != nil || len(vals) != len(g.Validators) {
			t.Fatalf("accepted genesis does not initialise a chain: %v (%d validators of %d)", err, len(vals), len(g.Validators))
		}
		if _, _, err := st.Commit(); err != nil {
			t.Fatal(err)
		}
		view, _ := st.Committed()
		sp, _, err := getRecord[Supply](view, keySupply)
		if total, terr := sp.Total(); err != nil || terr != nil || total != g.Supply || sp.Genesis != g.Supply {
			t.Fatalf("genesis books add up to %d, declared %d (%v %v)", total, g.Supply, err, terr)
		}
	})
}

// FuzzDecodeRecords: the binary record decoders never panic, and whatever they accept is
// the one encoding of the value they return.
func FuzzDecodeRecords(f *testing.F) {
	for _, r := range sampleRecords() {
		b, _ := encodeRecord(r)
		f.Add(b)
	}
	f.Add([]byte{binaryMarker, kindJob, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		canonical[Account](t, b)
		canonical[Node](t, b)
		canonical[Validator](t, b)
		canonical[Job](t, b)
	})
}

func canonical[T any](t *testing.T, b []byte) {
	var v T
	if len(b) == 0 || b[0] != binaryMarker || decodeRecord(b, &v) != nil {
		return
	}
	if out, err := encodeRecord(v); err != nil || !bytes.Equal(out, b) {
		t.Fatalf("%T decoded from %x encodes as %x (%v)", v, b, out, err)
	}
	if _, err := json.Marshal(v); err != nil {
		t.Fatalf("decoded %T does not marshal: %v", v, err)
	}
}

// FuzzReportAttestation: any report_attestation a validator or stranger signs, about the
// open audit's job or another, decodes and validates or is refused as invalid, and the
// ledger applies or refuses it without panicking; a refused one changes nothing and the
// books balance whatever it does. The job is wrongHarness's, which validator, with 40% of
// the stake, did not pass: its report that the result is wrong finds it wrong alone. In
// the body, JOB stands for the job's id and V0 to V5 for the six validators' addresses,
// so the fuzzer reaches the handler's rules.
func FuzzReportAttestation(f *testing.F) {
	f.Add([]byte(`{"job_id":"JOB","validator":"V4","reason":"transcript differs"}`), uint8(0))
	f.Add([]byte(`{"job_id":"JOB","validator":"V4","reason":"row 3","result_wrong":true}`), uint8(0))
	f.Add([]byte(`{"job_id":"JOB","validator":"V5","result_wrong":true}`), uint8(2))
	f.Add([]byte(`{"job_id":"JOB","validator":"V1"}`), uint8(1))
	f.Add([]byte(`{"job_id":"JOB","validator":"V3"}`), uint8(6))
	f.Add([]byte(`{"job_id":"job-0000000000000000","validator":"V0","reason":""}`), uint8(2))
	f.Add([]byte(`{"job_id":"JOB","validator":"x","reason":1}`), uint8(3))
	f.Add([]byte(`{"job_id":"JOB","validator":"V2","result_wrong":"yes"}`), uint8(1))
	signers := []ed25519.PrivateKey{validatorKey, validator2Key, vesterKey, strangerKey, lazy1Key, lazy2Key, consumerKey}
	f.Fuzz(func(t *testing.T, body []byte, signer uint8) {
		h, id := wrongHarness(t, [6]uint64{40_000, 10_000, 10_000, 10_000, 15_000, 15_000}, nil, nil, 1000)
		body = bytes.ReplaceAll(body, []byte("JOB"), []byte(id))
		for i, k := range signers[:6] {
			body = bytes.ReplaceAll(body, []byte(fmt.Sprintf("V%d", i)), []byte(addr(k)))
		}
		var m MsgReportAttestation
		if json.Unmarshal(body, &m) != nil {
			return
		}
		msg := Msg{ReportAttestation: &m}
		if err := msg.ValidateBasic(); err != nil {
			if !errors.Is(err, ErrInvalidMsg) {
				t.Fatalf("%+v refused with %v, not ErrInvalidMsg", m, err)
			}
			return
		}
		k := signers[int(signer)%len(signers)]
		before := h.stateHash()
		if r := h.do(k, msg); r.Code != CodeOK && !bytes.Equal(before, h.stateHash()) {
			t.Fatalf("refused report %+v (%s) changed state", m, r.Log)
		}
		h.checkBooks()
	})
}
