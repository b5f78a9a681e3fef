package store_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest"
)

// TestStreamingReadResumes: a streaming download that breaks with a transient error
// opens the rest of its range again and delivers exactly the bytes asked for; one that
// keeps breaking, or breaks with an error that is not transient, fails naming the
// store and key. Before, one reset connection failed the whole read, and with it a
// restore of every pack it was reading.
func TestStreamingReadResumes(t *testing.T) {
	data := storetest.Data(9, 1<<20)
	tests := []struct {
		name           string
		offset, length int64
		faults         []storetest.Fault
		wantErr        error // nil: the read succeeds
		wantOpens      int
	}{
		{name: "one break, whole object", offset: 0, length: -1,
			faults:    []storetest.Fault{{Err: connReset(), ReadBytes: 100}},
			wantOpens: 2},
		{name: "breaks in a range, and a failed reopen", offset: 1000, length: 300_000,
			faults: []storetest.Fault{
				{Err: io.ErrUnexpectedEOF, ReadBytes: 70_000},
				{Err: storetest.ErrTransient}, // the first reopen fails; the retry works
				{Err: connReset(), ReadBytes: 5},
			},
			wantOpens: 4},
		{name: "break after every byte asked for arrived", offset: 10, length: 4096,
			faults:    []storetest.Fault{{Err: connReset(), ReadBytes: 4096}},
			wantOpens: 1},
		{name: "breaks on every try", offset: 0, length: -1,
			faults:    []storetest.Fault{{Err: connReset(), ReadBytes: 1000, Times: -1}},
			wantErr:   syscall.ECONNRESET,
			wantOpens: 5},
		{name: "not transient", offset: 0, length: -1,
			faults:    []storetest.Fault{{Err: errors.New("checksum mismatch"), ReadBytes: 1000}},
			wantErr:   errors.New("checksum mismatch"),
			wantOpens: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, f, _ := faultyStore(t, store.Options{})
			storetest.MustPut(t, s, "pack", data)
			for _, ft := range tt.faults {
				f.Add(storetest.OpRead, ft)
			}
			r, err := s.NewRangeReader(t.Context(), "pack", tt.offset, tt.length)
			if err != nil {
				t.Fatalf("NewRangeReader: %v", err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if n := f.Calls(storetest.OpRead); n != tt.wantOpens {
				t.Errorf("%d opens, want %d", n, tt.wantOpens)
			}
			if tt.wantErr != nil {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr.Error()) || !strings.Contains(err.Error(), `mem://faulty: read "pack"`) {
					t.Fatalf("read = %v, want %v naming store and key", err, tt.wantErr)
				}
				if _, again := r.Read(make([]byte, 1)); again == nil || again == io.EOF {
					t.Errorf("a Read after the failure returned %v, want the error again", again)
				}
				return
			}
			want := data[tt.offset:]
			if tt.length >= 0 {
				want = want[:tt.length]
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, %v; want the %d bytes of the range", len(got), err, len(want))
			}
		})
	}
}
