package webpush

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"
)

// TestRFC8291Example decrypts the example message of RFC 8291, section
// 5: the key derivation is the standard's, byte for byte.
func TestRFC8291Example(t *testing.T) {
	uaPriv, _ := b64.DecodeString("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")
	auth, _ := b64.DecodeString("BTBZMqHH6r4Tts7J_aSIgg")
	body, _ := b64.DecodeString("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
	priv, err := ecdh.P256().NewPrivateKey(uaPriv)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := Decrypt(priv, auth, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(pt) != "When I grow up, I want to be a watermelon" {
		t.Fatalf("decrypted %q", pt)
	}
}

// TestEncryptDecrypt: what Encrypt makes for a subscription, its owner
// reads; anyone else cannot.
func TestEncryptDecrypt(t *testing.T) {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	var s Subscription
	s.Endpoint = "https://push.example/x"
	s.Keys.P256dh, s.Keys.Auth = b64.EncodeToString(priv.PublicKey().Bytes()), b64.EncodeToString(auth)
	body, err := Encrypt(s, []byte(`{"call_id":"c_1"}`))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := Decrypt(priv, auth, body)
	if err != nil || string(pt) != `{"call_id":"c_1"}` {
		t.Fatalf("decrypted %q, %v", pt, err)
	}
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := Decrypt(other, auth, body); err == nil {
		t.Fatal("another key read it")
	}
	for _, bad := range []Subscription{
		{Endpoint: "ftp://x"},
		{Endpoint: "http://push.example/x"},
	} {
		bad.Keys = s.Keys
		if err := bad.Check(false); err == nil {
			t.Errorf("%s accepted", bad.Endpoint)
		}
	}
	broken := s
	broken.Keys.P256dh = "AAAA"
	if err := broken.Check(false); err == nil {
		t.Error("a broken key accepted")
	}
}

// TestKeysRoundTrip: VAPID keys kept and read back are the same.
func TestKeysRoundTrip(t *testing.T) {
	k, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseKeys(k.Marshal())
	if err != nil || k2.PublicKey() != k.PublicKey() {
		t.Fatalf("read back %v, %v", k2, err)
	}
}

// FuzzDecrypt: any body is refused or read, without a panic.
func FuzzDecrypt(f *testing.F) {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	var s Subscription
	s.Endpoint = "https://push.example/x"
	s.Keys.P256dh, s.Keys.Auth = b64.EncodeToString(priv.PublicKey().Bytes()), b64.EncodeToString(auth)
	body, _ := Encrypt(s, []byte("hi"))
	f.Add(body)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = Decrypt(priv, auth, b) })
}
