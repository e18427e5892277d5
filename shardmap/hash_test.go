package shardmap

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// The expected values in this file were read from a PostgreSQL 15.20 server
// (x86_64, initdb --encoding=UTF8 --locale=C) with queries such as
// SELECT hashint8extended(v, 0). hash_server_test.go checks many more values
// against a live server when one is available; these keep the
// implementation honest on machines without one.

func TestHashIntVectors(t *testing.T) {
	t.Parallel()
	// Values around every width's boundaries, and int8 values that fold to
	// the same 32 bits, which must collide as they do in the server.
	tests := []struct {
		v    int64
		want int64
	}{
		{0, 4154612158245552303},
		{1, -3670598878359251130},
		{-1, -1888257769727981238},
		{2, 3647684041653542134},
		{-2, 495194309054116481},
		{42, 8010225493015854792},
		{-42, 8809670066178192187},
		{255, 6372911805303557281},
		{256, -4519207317629470217},
		{32767, 1790040721271588170},
		{-32768, 8455483389771436374},
		{32768, -9084556085943470837},
		{-32769, -8825591814415878124},
		{65535, 3873349985352926501},
		{65536, 1416966524809877208},
		{2147483647, -9109110466470504941},
		{-2147483648, 1977219185673256887},
		{2147483648, 1977219185673256887},
		{-2147483649, -9109110466470504941},
		{4294967295, -1888257769727981238},
		{4294967296, -3670598878359251130},
		{-4294967296, 4154612158245552303},
		{-4294967297, 495194309054116481},
		{1099511627776, -4519207317629470217},
		{1234567890123456789, -1348933112428498873},
		{-1234567890123456789, -9175276878857763225},
		{9223372036854775806, 8412796570446713154},
		{9223372036854775807, 1977219185673256887},
		{-9223372036854775807, 1352946186504680594},
		{-9223372036854775808, -9109110466470504941},
	}
	for _, tt := range tests {
		if got := HashInt(tt.v); got != tt.want {
			t.Errorf("HashInt(%d) = %d, want hashint8extended = %d", tt.v, got, tt.want)
		}
	}
}

// TestHashIntNarrowVectors guards the claim that HashInt serves int2 and
// int4 columns too: these are hashint4extended and hashint2extended results.
func TestHashIntNarrowVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fn   string
		v    int64
		want int64
	}{
		{"hashint4extended", 0, 4154612158245552303},
		{"hashint4extended", 1, -3670598878359251130},
		{"hashint4extended", -1, -1888257769727981238},
		{"hashint4extended", 7, -3288951424994980865},
		{"hashint4extended", -7, -4284878795861022465},
		{"hashint4extended", 100000, 4579935568182402376},
		{"hashint4extended", -100000, 3293739039768917006},
		{"hashint4extended", 2147483647, -9109110466470504941},
		{"hashint4extended", -2147483648, 1977219185673256887},
		{"hashint2extended", 0, 4154612158245552303},
		{"hashint2extended", 1, -3670598878359251130},
		{"hashint2extended", -1, -1888257769727981238},
		{"hashint2extended", 300, -5275140150900911638},
		{"hashint2extended", -300, -8231956127187890795},
		{"hashint2extended", 32767, 1790040721271588170},
		{"hashint2extended", -32768, 8455483389771436374},
	}
	for _, tt := range tests {
		if got := HashInt(tt.v); got != tt.want {
			t.Errorf("HashInt(%d) = %d, want %s = %d", tt.v, got, tt.fn, tt.want)
		}
	}
}

func TestHashTextVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		want int64
	}{
		{"", -6939563903564495251},
		{"a", 3591986179850072241},
		{"héllo", 2465157995015290115},
		{"日本語", 2870829529307104068},
		{"🐘", -2321601135681841783},
		{"PostgreSQL", -5770657681951818108},
		// Two-byte and three-byte runes straddling the 12-byte blocks.
		{"ééééé", 6154616514529319143},
		{"éééééé", -5651089186350200945},
		{"ééééééé", -5694160335528428308},
		{"€€€€", 5132617568832538846},
		{"a€€€€", 1276832458229146911},
		{"ab€€€€", 8444337355266117327},
		{strings.Repeat("shardgate", 100), -7702188131621083555},
		{strings.Repeat("日本語", 333), -6376783987255383467},
	}
	for _, tt := range tests {
		if got := HashText(tt.s); got != tt.want {
			t.Errorf("HashText(%q) = %d, want hashtextextended = %d", tt.s, got, tt.want)
		}
	}
}

// TestHashTextLengths covers every tail length after the 12-byte blocks,
// with zero to three blocks before it.
func TestHashTextLengths(t *testing.T) {
	t.Parallel()
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
	want := []int64{
		3591986179850072241, 2833316173711343549, -6747756470228489321, -1038429303365892052,
		3076356108696143428, 290958262752763840, -6158032784613548338, -8882191227074733005,
		-3278210106038014113, -3183301415634409076, 3112909444737856467, -7556637188122330412,
		8871624171452417744, 4973135103275945525, 9043359162837317271, 878954068520307163,
		981995727863167554, 484589330715449564, -232611774418841497, 772495730612720881,
		7996419909667933074, 5065299895581918398, -1198571854151947912, -1933194731779935345,
		5649064133428767341, -6612928417832572997, 906070157379857112, 4383436008928442396,
		767080639989974523, 6545271835218581707, -1141307898876739324, -3066765539148771092,
		1598914971604935471, -3350338714641251501, -7156342893310943996, -2958427101002104345,
		2784710810804423667, 9004545193313182482, -5303518999533991281, -5990491138472617374,
	}
	for n := 1; n <= len(alphabet); n++ {
		s := alphabet[:n]
		if got := HashText(s); got != want[n-1] {
			t.Errorf("HashText(%q) = %d, want %d", s, got, want[n-1])
		}
	}
}

// TestHashSeeded checks the seed folding, which HashInt and HashText never
// exercise because the server's unseeded hashes take the seed-0 shortcut.
func TestHashSeeded(t *testing.T) {
	t.Parallel()
	const partSeed = 8816678312871386365 // PostgreSQL's HASH_PARTITION_SEED
	ints := []struct {
		v    int64
		seed uint64
		want int64
	}{
		{0, 1, 434346878670890809},
		{1, 1, -7620678293940249823},
		{-1, 1, 3987656643895367148},
		{9223372036854775807, 1, 3044001184559810835},
		{0, 1<<64 - 1, -4140905993450701875},
		{1, 1<<64 - 1, 1505930170527472848},
		{-1, 1<<64 - 1, 6481520839006961279},
		{9223372036854775807, 1<<64 - 1, 6110074166949006181},
		{0, partSeed, -4403592609991167795},
		{1, partSeed, 5968994663651403477},
		{-1, partSeed, -5017072347659237694},
		{9223372036854775807, partSeed, 4938542303000433043},
	}
	for _, tt := range ints {
		if got := hashInt(tt.v, tt.seed); got != tt.want {
			t.Errorf("hashInt(%d, %d) = %d, want hashint8extended = %d", tt.v, tt.seed, got, tt.want)
		}
	}
	texts := []struct {
		s    string
		seed uint64
		want int64
	}{
		{"", 1, -150071773020461347},
		{"a", 1, 3325245193489759299},
		{"abcdefghijkl", 1, -6429754808531195817},
		{"abcdefghijklm", 1, 3808842878744369845},
		{"", 1<<64 - 1, -5142811166230430645},
		{"a", 1<<64 - 1, 8688456822845412000},
		{"abcdefghijkl", 1<<64 - 1, -3669402583748189229},
		{"abcdefghijklm", 1<<64 - 1, 6205390682044465928},
		{"", partSeed, -5700645584453517373},
		{"a", partSeed, -6705225459120232837},
		{"abcdefghijkl", partSeed, -7876791541613377658},
		{"abcdefghijklm", partSeed, -6785754114725280077},
	}
	for _, tt := range texts {
		if got := int64(hashAnyExtended([]byte(tt.s), tt.seed)); got != tt.want {
			t.Errorf("hashAnyExtended(%q, %d) = %d, want hashtextextended = %d", tt.s, tt.seed, got, tt.want)
		}
	}
}

func TestHashUUIDVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		u    string
		want int64
	}{
		{"00000000-0000-0000-0000-000000000000", -6859010066814654381},
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", 293445543803463785},
		{"00112233-4455-6677-8899-aabbccddeeff", 4462459420613485749},
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 7543054272012930821},
		{"00000000-0000-0000-0000-000000000001", 3419970005924668665},
		{"80000000-0000-0000-0000-000000000000", 9022107499229921510},
	}
	for _, tt := range tests {
		if got := HashUUID(mustUUID(t, tt.u)); got != tt.want {
			t.Errorf("HashUUID(%s) = %d, want uuid_hash_extended = %d", tt.u, got, tt.want)
		}
	}
}

// TestHashNoAlloc guards the promise that hashing on the routing path
// costs no garbage, long strings included.
func TestHashNoAlloc(t *testing.T) {
	s := strings.Repeat("日本語 text ", 30)
	u := [16]byte{1, 2, 3}
	var sink int64
	allocs := testing.AllocsPerRun(100, func() {
		sink += HashText(s) + HashInt(sink) + HashUUID(u)
	})
	if allocs != 0 {
		t.Errorf("hashing allocates %v times per run, want 0", allocs)
	}
}

func mustUUID(t testing.TB, s string) [16]byte {
	t.Helper()
	var u [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != len(u) {
		t.Fatalf("bad uuid %q: %v", s, err)
	}
	copy(u[:], b)
	return u
}

var benchSink int64

func BenchmarkHashInt(b *testing.B) {
	for i := range b.N {
		benchSink += HashInt(int64(i))
	}
}

func BenchmarkHashUUID(b *testing.B) {
	// Varying the input by poking a byte would stall the word loads on
	// store forwarding and time the CPU rather than the hash.
	us := make([][16]byte, 1024)
	for i := range us {
		binary.LittleEndian.PutUint64(us[i][:], uint64(i)*0x9e3779b97f4a7c15)
		binary.LittleEndian.PutUint64(us[i][8:], uint64(i))
	}
	for i := range b.N {
		benchSink += HashUUID(us[i%len(us)])
	}
}

func BenchmarkHashText(b *testing.B) {
	for _, n := range []int{8, 32, 200} {
		s := strings.Repeat("x", n)
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for range b.N {
				benchSink += HashText(s)
			}
		})
	}
}
