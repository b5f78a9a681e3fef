package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// decodable are the annotation values a plugin or a session pod reads back, each with
// the key it lives under: whatever a Job's annotations say (anyone who can patch the Job
// can write them), Decode returns a value or an error naming the key.
func decodable() []struct {
	key string
	new func() interface{ schema() int }
} {
	return []struct {
		key string
		new func() interface{ schema() int }
	}{
		{AnnotationSessionStatus, func() interface{ schema() int } { return &SessionStatus{} }},
		{AnnotationHostStatus, func() interface{ schema() int } { return &HostStatus{} }},
		{AnnotationVerifyStatus, func() interface{ schema() int } { return &VerifyStatus{} }},
		{AnnotationConfig, func() interface{ schema() int } { return &BackupConfig{} }},
		{AnnotationHostSpec, func() interface{ schema() int } { return &HostSpec{} }},
		{AnnotationConfig, func() interface{ schema() int } { return &RestoreConfig{} }},
		{AnnotationRestoreHostSpec, func() interface{ schema() int } { return &RestoreHostSpec{} }},
		{AnnotationConfig, func() interface{ schema() int } { return &VerifyConfig{} }},
	}
}

// FuzzDecodeAnnotation: Decode of any value into any status or config type returns an
// error naming the annotation, or a value of a known schema that survives a JSON round
// trip (what the job writes, the plugin reads the same).
func FuzzDecodeAnnotation(f *testing.F) {
	for _, v := range []any{
		SessionStatus{SchemaVersion: 1, Phase: PhaseRunning, TotalHosts: 3, Hosts: HostCounts{Running: 1, Succeeded: 2},
			Conditions: []Condition{{Type: ConditionRetentionPolicyApplied, Status: "True"}}, Members: []MemberStatus{{Phase: PhaseFailed, Error: "x"}}},
		HostStatus{SchemaVersion: 1, Hostname: "host-0", Phase: PhaseSucceeded, Duration: "1s", Snapshots: []SnapshotStats{{Name: "abc", Directory: "/data"}}},
		VerifyStatus{SchemaVersion: 1, Phase: PhaseFailed, RetryLeft: 2},
		BackupConfig{SchemaVersion: 1, Name: "web", Repository: "s3://b/p"},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		for i := range decodable() {
			f.Add(string(b), uint8(i))
		}
	}
	f.Add(`{"schemaVersion":2}`, uint8(0))
	f.Add(`{"schemaVersion":1e400}`, uint8(1))
	f.Add(`null`, uint8(2))
	f.Add(`{"schemaVersion":1,"hosts":{"running":-1},"members":[null]}`, uint8(0))
	f.Fuzz(func(t *testing.T, value string, which uint8) {
		kinds := decodable()
		k := kinds[int(which)%len(kinds)]
		v := k.new()
		if err := Decode(k.key, value, v); err != nil {
			if !strings.Contains(err.Error(), k.key) {
				t.Fatalf("error does not name annotation %s: %v", k.key, err)
			}
			return
		}
		if s := v.schema(); s > SchemaVersion {
			t.Fatalf("value %q of schema %d decoded", value, s)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("decoded %T of %q does not encode: %v", v, value, err)
		}
		back := k.new()
		if err := Decode(k.key, string(b), back); err != nil {
			t.Fatalf("%s does not decode again: %v", b, err)
		}
		// Compared encoded: json.RawMessage fields keep the spelling they were read
		// with, which encoding compacts.
		if again, _ := json.Marshal(back); string(again) != string(b) {
			t.Fatalf("round trip of %q:\n%s\n%s", value, b, again)
		}
	})
}
