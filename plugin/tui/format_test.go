package tui

import (
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

func TestHumanAge(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"negative", -time.Second, "0s"},
		{"seconds", 45 * time.Second, "45s"},
		{"under two minutes", 119 * time.Second, "119s"},
		{"minutes and seconds", 3*time.Minute + 12*time.Second, "3m12s"},
		{"whole minutes", 5 * time.Minute, "5m"},
		{"minutes", 42*time.Minute + 10*time.Second, "42m"},
		{"hours and minutes", 5*time.Hour + 20*time.Minute, "5h20m"},
		{"hours", 30 * time.Hour, "30h"},
		{"days and hours", 3*24*time.Hour + 4*time.Hour, "3d4h"},
		{"days", 12 * 24 * time.Hour, "12d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := humanAge(tt.d); got != tt.want {
				t.Errorf("humanAge(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestETA(t *testing.T) {
	running := func(p api.Progress) api.HostStatus {
		return api.HostStatus{Phase: api.PhaseRunning, Progress: &p}
	}
	tests := []struct {
		name string
		h    api.HostStatus
		want string
	}{
		{"no progress", api.HostStatus{Phase: api.PhaseRunning}, "-"},
		{"scanning", running(api.Progress{BytesDone: 1, BytesTotal: 100, BytesPerS: 1, Scanning: true}), "scanning"},
		{"no rate", running(api.Progress{BytesDone: 1, BytesTotal: 100}), "-"},
		{"seconds", running(api.Progress{BytesDone: 0, BytesTotal: 40 << 20, BytesPerS: 1 << 20}), "40s"},
		{"minutes", running(api.Progress{BytesDone: 0, BytesTotal: 185 << 20, BytesPerS: 1 << 20}), "3m05s"},
		{"hours", running(api.Progress{BytesDone: 0, BytesTotal: 7620 << 20, BytesPerS: 1 << 20}), "2h07m"},
		{"almost done", running(api.Progress{BytesDone: 99, BytesTotal: 100, BytesPerS: 1 << 20}), "<1s"},
		{"finished", api.HostStatus{Phase: api.PhaseSucceeded, Progress: &api.Progress{BytesTotal: 9, BytesPerS: 1}}, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eta(tt.h); got != tt.want {
				t.Errorf("eta = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHostFraction(t *testing.T) {
	tests := []struct {
		name    string
		h       api.HostStatus
		want    float64
		wantBar bool
	}{
		{"pending", api.HostStatus{}, 0, true},
		{"skipped", api.HostStatus{Phase: api.PhaseSkipped}, 0, false},
		{"succeeded without progress", api.HostStatus{Phase: api.PhaseSucceeded}, 1, true},
		{"bytes", api.HostStatus{Phase: api.PhaseRunning, Progress: &api.Progress{BytesDone: 1, BytesTotal: 4, FilesDone: 3, FilesTotal: 4}}, 0.25, true},
		{"files when no bytes", api.HostStatus{Phase: api.PhaseRunning, Progress: &api.Progress{FilesDone: 3, FilesTotal: 4}}, 0.75, true},
		{"done beyond total", api.HostStatus{Phase: api.PhaseRunning, Progress: &api.Progress{BytesDone: 9, BytesTotal: 4}}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bar := hostFraction(tt.h)
			if got != tt.want || bar != tt.wantBar {
				t.Errorf("hostFraction = %v, %v; want %v, %v", got, bar, tt.want, tt.wantBar)
			}
		})
	}
}
