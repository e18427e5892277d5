package auth

import (
	"errors"
	"strings"
	"testing"
)

func checkParseError(t *testing.T, err error) {
	t.Helper()
	ae, ok := errors.AsType[*Error](err)
	if !ok || (ae.Code != CodeProtocolViolation && ae.Code != CodeFeatureNotSupported) {
		t.Fatalf("parse error %#v is not a protocol error", err)
	}
}

func FuzzParseClientFirst(f *testing.F) {
	for _, seed := range []string{
		"n,,n=,r=rOprNGfwEbeRWgbNEkqO",
		"y,,n=user,r=abc,x=ext",
		"p=tls-server-end-point,,n=,r=abc",
		"n,a=admin,n=,r=abc",
		"n,,m=ext,n=,r=abc",
		"n,,n=,r=abc,",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := parseClientFirst(data)
		if err != nil {
			checkParseError(t, err)
			return
		}
		if cf.gs2Header+cf.bare != string(data) {
			t.Fatalf("header %q and bare %q do not make up %q", cf.gs2Header, cf.bare, data)
		}
		if cf.gs2Header != "n,," && cf.gs2Header != "y,," {
			t.Fatalf("accepted GS2 header %q", cf.gs2Header)
		}
		if cf.nonce == "" || !isPrintable(cf.nonce) || !strings.Contains(cf.bare, "r="+cf.nonce) {
			t.Fatalf("bad nonce %q from %q", cf.nonce, data)
		}
	})
}

func FuzzParseClientFinal(f *testing.F) {
	proof := strings.Repeat("A", 43) + "="
	for _, seed := range []string{
		"c=biws,r=abcdef,p=" + proof,
		"c=eSws,r=abc,x=ext,p=" + proof,
		"c=biws,r=abc,p=" + proof + ",z=1",
		"c=biws,r=abc,p=AAAA",
		"c=biws,r=abc",
		"r=abc,c=biws,p=" + proof,
		"c=biws,r=abc,p=" + proof + "\x00",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := parseClientFinal(data)
		if err != nil {
			checkParseError(t, err)
			return
		}
		if len(cf.proof) != scramKeyLen {
			t.Fatalf("proof of %d bytes accepted", len(cf.proof))
		}
		if !strings.HasPrefix(string(data), cf.withoutProof+",p=") || strings.Contains(string(data[len(cf.withoutProof)+3:]), ",") {
			t.Fatalf("without-proof %q is not what precedes the final proof in %q", cf.withoutProof, data)
		}
		if !strings.HasPrefix(cf.withoutProof, "c="+cf.channelBinding+",r="+cf.nonce) {
			t.Fatalf("c=%q r=%q not at the start of %q", cf.channelBinding, cf.nonce, data)
		}
	})
}
