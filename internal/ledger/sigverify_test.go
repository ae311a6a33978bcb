package ledger

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"maps"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
)

// verifyEd25519 must give crypto/ed25519.Verify's verdict on every input: a node that
// replays history with either must accept and reject the same transactions. These tests
// compare the two on honest signatures and on the inputs where Ed25519 implementations are
// known to disagree: S at or above the group order, small-order and mixed-order points,
// non-canonical point encodings, and the cofactored/cofactorless split.

// speccheckVectors are the twelve edge cases of "Taming the many EdDSAs" (Chalkias,
// Garillot, Nikolaenko), as curve25519-voi's speccheck_test.go tests them. stdlib is
// crypto/ed25519's verdict, pinned so that a Go release changing it shows up here.
var speccheckVectors = []struct {
	name, pub, msg, sig string
	stdlib              bool
}{
	{"small order A, small order R",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000", true},
	{"small order A, mixed order R",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
		"f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04", true},
	{"mixed order A, small order R",
		"f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
		"aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e", true},
	{"mixed order A, mixed order R",
		"cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
		"9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
		"9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009", true},
	{"passes only a cofactored verify",
		"cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
		"e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
		"160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09", false},
	{"passes only a cofactored verify computing 8(hA)",
		"cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
		"e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
		"21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405", false},
	{"S > L",
		"442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
		"85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
		"e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514", false},
	{"S >> L",
		"442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
		"85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
		"8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22", false},
	{"non-canonical small order R, reduced before hashing",
		"f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
		"9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f", false},
	{"non-canonical small order R, not reduced before hashing",
		"f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
		"9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908", false},
	{"non-canonical small order A, reduced before hashing",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
		"a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04", false},
	{"non-canonical small order A, not reduced before hashing",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
		"a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04", true},
}

var (
	groupOrder = new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 252), mustBig("27742317777372353535851937790883648493"))
	fieldPrime = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
)

// torsionPoints are the canonical encodings of the eight points of order dividing 8.
var torsionPoints = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
	"0000000000000000000000000000000000000000000000000000000000000000", // order 4
	"0000000000000000000000000000000000000000000000000000000000000080", // order 4
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
}

// differential counts the inputs of each kind it compared and how many the standard
// library accepted, so a test can show it reached the accepting paths too.
type differential struct {
	t        *testing.T
	compared map[string]int
	accepted map[string]int
}

func (d *differential) check(kind string, pub, msg, sig []byte) bool {
	d.t.Helper()
	want := ed25519.Verify(pub, msg, sig)
	if got := verifyEd25519(pub, msg, sig); got != want {
		d.t.Fatalf("%s: verifyEd25519 = %v, crypto/ed25519 = %v\npub %x\nmsg %x\nsig %x", kind, got, want, pub, msg, sig)
	}
	d.compared[kind]++
	if want {
		d.accepted[kind]++
	}
	return want
}

func TestVerifyMatchesStdlib(t *testing.T) {
	d := &differential{t: t, compared: map[string]int{}, accepted: map[string]int{}}
	rng := rand.New(rand.NewChaCha8([32]byte{'e', 'd', '2', '5', '5', '1', '9'}))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	for i, v := range speccheckVectors {
		if got := d.check("speccheck", unhex(t, v.pub), unhex(t, v.msg), unhex(t, v.sig)); got != v.stdlib {
			t.Errorf("speccheck %d (%s): crypto/ed25519 = %v, want %v", i, v.name, got, v.stdlib)
		}
	}

	type signed struct {
		a             *big.Int // the signer's secret scalar
		pub, msg, sig []byte
	}
	var honest []signed
	for range 64 {
		seed := randBytes(ed25519.SeedSize)
		priv := ed25519.NewKeyFromSeed(seed)
		msg := randBytes(rng.IntN(300))
		s := signed{secretScalar(seed), pub(priv), msg, ed25519.Sign(priv, msg)}
		honest = append(honest, s)
		if !d.check("honest", s.pub, s.msg, s.sig) {
			t.Fatal("an honest signature does not verify")
		}
		d.check("other message", s.pub, append(append([]byte{}, msg...), 0), s.sig)
		d.check("random bytes", randBytes(32), msg, randBytes(64))
		d.check("random R, S", s.pub, msg, randBytes(64))
	}

	// Every single-bit flip of R, S and A.
	for _, s := range honest[:4] {
		for bit := range 256 {
			sig := append([]byte{}, s.sig...)
			sig[bit/8] ^= 1 << (bit % 8)
			d.check("flipped R bit", s.pub, s.msg, sig)
			sig = append([]byte{}, s.sig...)
			sig[32+bit/8] ^= 1 << (bit % 8)
			d.check("flipped S bit", s.pub, s.msg, sig)
			key := append([]byte{}, s.pub...)
			key[bit/8] ^= 1 << (bit % 8)
			d.check("flipped A bit", key, s.msg, s.sig)
		}
	}

	// S at or above the group order: S + jL is the same scalar mod L, so a verifier that
	// reduced S would accept it; L itself, L-1, and S with each high bit forced on.
	for _, s := range honest {
		S := leToBig(s.sig[32:])
		for j := int64(1); ; j++ {
			same := new(big.Int).Add(S, new(big.Int).Mul(big.NewInt(j), groupOrder))
			if same.BitLen() > 256 {
				break
			}
			d.check("S + jL", s.pub, s.msg, append(s.sig[:32:32], bigToLE(same)...))
		}
		for _, S := range []*big.Int{groupOrder, new(big.Int).Sub(groupOrder, big.NewInt(1)), new(big.Int).Add(groupOrder, big.NewInt(1))} {
			d.check("S near L", s.pub, s.msg, append(s.sig[:32:32], bigToLE(S)...))
		}
		for bit := 252; bit < 256; bit++ {
			sig := append([]byte{}, s.sig...)
			sig[32+bit/8] |= 1 << (bit % 8)
			d.check("S high bit set", s.pub, s.msg, sig)
		}
	}

	// Non-canonical encodings: y = p+k for the k that fit in 255 bits, each with either
	// sign, and the sign bit set on the two points whose x is zero.
	var nonCanonical [][]byte
	for k := range 19 {
		enc := bigToLE(new(big.Int).Add(fieldPrime, big.NewInt(int64(k))))
		neg := append([]byte{}, enc...)
		neg[31] |= 0x80
		nonCanonical = append(nonCanonical, enc, neg)
	}
	nonCanonical = append(nonCanonical, unhex(t, "0100000000000000000000000000000000000000000000000000000000000080"),
		unhex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"))
	for _, enc := range nonCanonical {
		for _, s := range honest[:8] {
			d.check("non-canonical A", enc, s.msg, s.sig)
			d.check("non-canonical R", s.pub, s.msg, append(append([]byte{}, enc...), s.sig[32:]...))
		}
	}

	// Small-order A and R, canonical or not, where [S]B - [k]A = R holds for some messages:
	// S = 0 needs R = -[k]A, which some k hit since both lie in the 8-torsion.
	smallOrder := append([][]byte{}, nonCanonical[0], nonCanonical[1], nonCanonical[2], nonCanonical[3],
		nonCanonical[len(nonCanonical)-2], nonCanonical[len(nonCanonical)-1]) // y = 0, y = 1 as y+p; x = 0 with the sign bit
	for _, h := range torsionPoints {
		smallOrder = append(smallOrder, unhex(t, h))
	}
	zeroS := make([]byte, 32)
	for _, A := range smallOrder {
		for _, R := range smallOrder {
			for m := range 8 {
				d.check("small-order A and R", A, []byte{byte(m)}, append(append([]byte{}, R...), zeroS...))
			}
		}
	}

	// Small-order A with R = [r]B and S = r: accepted exactly when [k]A is the identity.
	// Small-order R with an honest A and S = k·a: accepted exactly when R is the identity.
	for i, A := range smallOrder {
		s := honest[i]
		r := new(big.Int).Mod(s.a, groupOrder)
		for m := range 16 {
			d.check("small-order A, honest R", A, []byte{byte(m)}, append(append([]byte{}, s.pub...), bigToLE(r)...))
		}
	}
	for _, R := range smallOrder {
		for _, s := range honest[:4] {
			S := new(big.Int).Mul(challenge(R, s.pub, s.msg), s.a)
			d.check("small-order R, honest A", s.pub, s.msg, append(append([]byte{}, R...), bigToLE(S.Mod(S, groupOrder))...))
		}
	}

	// Mixed-order A = [a]B + T signing with R = [r]B, S = r + k·a: [S]B - [k]A = R - [k]T,
	// so a cofactorless verifier accepts exactly when [k]T is the identity and a cofactored
	// one always. Mixed-order R = [r]B + T with an honest A fails cofactorless unless T is.
	for i, s := range honest[:8] {
		nonce := honest[len(honest)-1-i]
		for _, h := range torsionPoints {
			T := unhex(t, h)
			A := addPoints(t, s.pub, T)
			for m := range 16 {
				msg := []byte{byte(m)}
				S := new(big.Int).Mul(challenge(nonce.pub, A, msg), s.a)
				S.Add(S, nonce.a).Mod(S, groupOrder)
				d.check("mixed-order A", A, msg, append(append([]byte{}, nonce.pub...), bigToLE(S)...))
			}
			R := addPoints(t, nonce.pub, T)
			S := new(big.Int).Mul(challenge(R, s.pub, s.msg), s.a)
			S.Add(S, nonce.a).Mod(S, groupOrder)
			d.check("mixed-order R", s.pub, s.msg, append(R, bigToLE(S)...))
		}
	}

	zero := make([]byte, 64)
	d.check("all zero", zero[:32], nil, zero)
	d.check("all zero", zero[:32], []byte("m"), zero)
	id := unhex(t, torsionPoints[0])
	d.check("identity A and R, S = 0", id, nil, append(append([]byte{}, id...), zeroS...))

	for _, kind := range []string{"honest", "small-order A and R", "small-order A, honest R", "small-order R, honest A",
		"identity A and R, S = 0", "mixed-order A", "mixed-order R"} {
		if d.accepted[kind] == 0 {
			t.Errorf("no %q input was accepted: the test misses the accepting path", kind)
		}
	}
	total := 0
	for _, kind := range slices.Sorted(maps.Keys(d.compared)) {
		t.Logf("%-26s %5d compared, %4d accepted", kind, d.compared[kind], d.accepted[kind])
		total += d.compared[kind]
	}
	t.Logf("%d inputs in all", total)
}

// FuzzVerifyMatchesStdlib: on any input, verifyEd25519 and crypto/ed25519.Verify agree.
func FuzzVerifyMatchesStdlib(f *testing.F) {
	for _, v := range speccheckVectors {
		key, _ := hex.DecodeString(v.pub)
		msg, _ := hex.DecodeString(v.msg)
		sig, _ := hex.DecodeString(v.sig)
		f.Add(key, msg, sig)
	}
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	f.Add(pub(priv), []byte("m"), ed25519.Sign(priv, []byte("m")))
	f.Add(make([]byte, 32), []byte{}, make([]byte, 64))
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		// Both panic on a key of another length, and verifySignature always passes 32 bytes,
		// so fit the input to 32 bytes rather than waste it.
		key := make([]byte, ed25519.PublicKeySize)
		copy(key, pub)
		if got, want := verifyEd25519(key, msg, sig), ed25519.Verify(key, msg, sig); got != want {
			t.Fatalf("verifyEd25519 = %v, crypto/ed25519 = %v\npub %x\nmsg %x\nsig %x", got, want, key, msg, sig)
		}
	})
}

// BenchmarkVerifyEd25519 compares the two verifiers on a transaction-sized message.
func BenchmarkVerifyEd25519(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := append(append([]byte{}, signDomain...), make([]byte, 256)...)
	sig := ed25519.Sign(priv, msg)
	key := pub(priv)
	for _, v := range []struct {
		name   string
		verify func(ed25519.PublicKey, []byte, []byte) bool
	}{{"stdlib", ed25519.Verify}, {"voi", verifyEd25519}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !v.verify(key, msg, sig) {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}

// secretScalar is the scalar a with A = [a]B that ed25519 derives from a seed.
func secretScalar(seed []byte) *big.Int {
	h := sha512.Sum512(seed)
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	return leToBig(h[:32])
}

// challenge is k = H(R || A || msg) mod L.
func challenge(R, A, msg []byte) *big.Int {
	h := sha512.New()
	h.Write(R)
	h.Write(A)
	h.Write(msg)
	k := leToBig(h.Sum(nil))
	return k.Mod(k, groupOrder)
}

// addPoints returns the encoding of the sum of two encoded points.
func addPoints(t *testing.T, a, b []byte) []byte {
	t.Helper()
	var sum curve.EdwardsPoint
	var enc curve.CompressedEdwardsY
	for i, p := range [][]byte{a, b} {
		var q curve.EdwardsPoint
		if _, err := enc.SetBytes(p); err != nil {
			t.Fatal(err)
		}
		if _, err := q.SetCompressedY(&enc); err != nil {
			t.Fatalf("%x is not a point: %v", p, err)
		}
		if i == 0 {
			sum = q
		} else {
			sum.Add(&sum, &q)
		}
	}
	enc.SetEdwardsPoint(&sum)
	return enc[:]
}

func leToBig(le []byte) *big.Int {
	be := make([]byte, len(le))
	for i, c := range le {
		be[len(le)-1-i] = c
	}
	return new(big.Int).SetBytes(be)
}

// bigToLE encodes n, which must be below 2^256, as 32 little-endian bytes.
func bigToLE(n *big.Int) []byte {
	var le [32]byte
	be := n.FillBytes(make([]byte, 32))
	for i, c := range be {
		le[31-i] = c
	}
	return le[:]
}

func mustBig(dec string) *big.Int {
	n, ok := new(big.Int).SetString(dec, 10)
	if !ok {
		panic("bad decimal " + dec)
	}
	return n
}

func unhex(t *testing.T, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
