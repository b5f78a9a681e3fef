package repo

import (
	"context"
	"io"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

// Backend is what the repository needs from storage (*store.Store implements it).
type Backend interface {
	URL() string
	Get(ctx context.Context, key string) ([]byte, error)
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	PutIfAbsent(ctx context.Context, key string, data []byte) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string, fn func(store.Object) error) error
}
