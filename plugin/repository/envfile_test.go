package repository

import (
	"encoding/base64"
	"maps"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    map[string]string
		wantErr string
	}{
		{"credentials", "AWS_ACCESS_KEY_ID=AKIA123\nAWS_SECRET_ACCESS_KEY=s3cr=t/+x\n",
			map[string]string{"AWS_ACCESS_KEY_ID": "AKIA123", "AWS_SECRET_ACCESS_KEY": "s3cr=t/+x"}, ""},
		{"comments, blank lines, CRLF, indentation", "# MinIO\r\n\r\n  AWS_REGION=us-east-1\r\n\t# more\nX=1",
			map[string]string{"AWS_REGION": "us-east-1", "X": "1"}, ""},
		{"byte order mark", "\ufeffA=1\n", map[string]string{"A": "1"}, ""},
		{"empty value", "EMPTY=\n", map[string]string{"EMPTY": ""}, ""},
		{"value kept as written, quotes and spaces too", `Q="quoted value" ` + "\n", map[string]string{"Q": `"quoted value" `}, ""},
		{"empty file", "", map[string]string{}, ""},
		{"no equals sign", "A=1\nAKIASECRET\n", nil, "creds.env:2: want KEY=VALUE, found no '=' on this line"},
		{"dash in name", "AWS-KEY=1\n", nil, `creds.env:1: "AWS-KEY" is not a valid environment variable name: it must match [A-Za-z_][A-Za-z0-9_]*`},
		{"leading digit", "\n1A=1\n", nil, `creds.env:2: "1A" is not a valid`},
		{"empty name", "=value\n", nil, `creds.env:1: "" is not a valid`},
		{"export prefix", "export A=1\n", nil, `(drop the leading "export")`},
		{"dot in name", "a.b=1\n", nil, `"a.b" is not a valid`},
		{"repository key reserved", "STASH_REPOSITORY=s3://x\n", nil, "creds.env:1: STASH_REPOSITORY is set by kubectl stash itself"},
		{"password key reserved", "STASH_PASSWORD=x\n", nil, "creds.env:1: STASH_PASSWORD is set by kubectl stash itself"},
		{"duplicate", "A=1\nB=2\nA=3\n", nil, "creds.env:3: A is already set on line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile("creds.env", strings.NewReader(tt.content))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseEnvFileDoesNotEchoALineWithoutKey(t *testing.T) {
	_, err := ParseEnvFile("creds.env", strings.NewReader("wJalrXUtnFEMI/K7MDENG\n"))
	if err == nil || strings.Contains(err.Error(), "wJalr") {
		t.Fatalf("err = %v: want an error that does not quote the line", err)
	}
}

func TestGeneratePassword(t *testing.T) {
	a, err := GeneratePassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GeneratePassword()
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 || len(a) != 43 {
		t.Errorf("password %q: %d bytes (%v), want 32 bytes base64url without padding", a, len(raw), err)
	}
	if a == b {
		t.Error("two generated passwords are equal")
	}
}
