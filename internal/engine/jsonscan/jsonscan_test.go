package jsonscan

import "testing"

func TestUint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		bits int
		want uint64
		ok   bool
	}{
		{"0,", 64, 0, true}, {"42}", 32, 42, true}, {"18446744073709551615", 64, 1<<64 - 1, true},
		{"18446744073709551616", 64, 0, false}, {"4294967296", 32, 0, false}, {"07", 64, 0, false},
		{"-1", 64, 0, false}, {"1.5", 64, 0, false}, {"1e3", 64, 0, false}, {"", 64, 0, false},
	} {
		p := Scanner{B: []byte(tc.in)}
		got, ok := p.Uint(tc.bits)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Uint(%q, %d) = %d, %v; want %d, %v", tc.in, tc.bits, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStr(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`"data"`, "data", true}, {`"größe"`, "größe", true}, {`"a\"b"`, "", false},
		{"\"a\x01\"", "", false}, {"\"\xff\"", "", false}, {`"open`, "", false}, {`x`, "", false},
	} {
		p := Scanner{B: []byte(tc.in)}
		got, ok := p.Str()
		if string(got) != tc.want || ok != tc.ok || ok && p.I != len(tc.in) {
			t.Errorf("Str(%q) = %q, %v (at %d); want %q, %v", tc.in, got, ok, p.I, tc.want, tc.ok)
		}
	}
}
