package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

func testKey(t testing.TB, b byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func TestAddressRoundTrip(t *testing.T) {
	priv := testKey(t, 7)
	addr := AddressOfKey(priv)
	pub, err := addr.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatalf("address %s decodes to a different key", addr)
	}
}

func TestAddressRejectsMalformed(t *testing.T) {
	for _, a := range []Address{"", "0OIl", "abc", Address(AddressOf(make([]byte, 31)))} {
		if err := a.Validate(); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("Validate(%q) = %v, want ErrInvalidAddress", a, err)
		}
	}
}

func TestSolanaJSONRoundTrip(t *testing.T) {
	priv := testKey(t, 9)
	got, err := ParseSolanaJSON(MarshalSolanaJSON(priv))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(priv) {
		t.Fatal("round trip changed the key")
	}
}

func TestSolanaJSONRejectsMismatchedPublicHalf(t *testing.T) {
	data := MarshalSolanaJSON(testKey(t, 1))
	// Flip the last byte of the public half: "...,N]\n".
	i := bytes.LastIndexByte(data, ',')
	tampered := append(append([]byte{}, data[:i+1]...), []byte("0]\n")...)
	if bytes.Equal(tampered, data) {
		t.Skip("last byte already zero")
	}
	if _, err := ParseSolanaJSON(tampered); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("err = %v, want ErrInvalidKey", err)
	}
}

func FuzzParseSolanaJSON(f *testing.F) {
	f.Add(MarshalSolanaJSON(testKey(f, 3)))
	f.Add([]byte("[1,2,3]"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		priv, err := ParseSolanaJSON(data)
		if err != nil {
			return
		}
		again, err := ParseSolanaJSON(MarshalSolanaJSON(priv))
		if err != nil || !again.Equal(priv) {
			t.Fatalf("accepted key does not round trip: %v", err)
		}
	})
}

func FuzzAddress(f *testing.F) {
	f.Add(string(AddressOfKey(testKey(f, 4))))
	f.Add("1111")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := Address(s).PublicKey()
		if err != nil {
			return
		}
		if AddressOf(pub) != Address(s) {
			t.Fatalf("address %q is not canonical", s)
		}
	})
}
