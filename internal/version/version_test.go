package version

import "testing"

func TestImageTag(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"release", "v1.2.3", "v1.2.3"},
		{"describe output", "v1.2.3-4-gabcdef0-dirty", "v1.2.3-4-gabcdef0-dirty"},
		{"build metadata", "v1.2.3+meta.1", "v1.2.3-meta.1"},
		{"leading dash", "-x", "v-x"},
		{"empty", "", "v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ImageTag(tt.in); got != tt.want {
				t.Errorf("ImageTag(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDefaultImagePinsVersion(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.8.7"
	if got, want := DefaultImage(), "ghcr.io/kubectl-stash/stash-job:v9.8.7"; got != want {
		t.Errorf("DefaultImage() = %q, want %q", got, want)
	}
	if got := Get().JobImage; got != DefaultImage() {
		t.Errorf("Get().JobImage = %q, want %q", got, DefaultImage())
	}
}
