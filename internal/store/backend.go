package store

import (
	"bytes"
	"context"
	"io"

	"gocloud.dev/blob"
)

// Backend is the part of a bucket a Store works through, one method per call it
// makes. BucketBackend adapts a *blob.Bucket; tests wrap a Backend to inject faults
// (storetest.Faulty). Errors are the bucket's own, carrying gcerrors codes; the
// Store classifies and wraps them.
type Backend interface {
	// Stat returns the size and modification time of key.
	Stat(ctx context.Context, key string) (Object, error)
	// NewRangeReader opens length bytes of key from offset (length < 0: to the end).
	NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Upload writes data to key; with createOnly, only if key does not exist yet.
	Upload(ctx context.Context, key string, data []byte, createOnly bool) error
	// Delete removes key.
	Delete(ctx context.Context, key string) error
	// ListPage returns up to pageSize objects under prefix, starting at token (nil
	// for the first page), and the token of the next page (nil after the last).
	ListPage(ctx context.Context, prefix string, token []byte, pageSize int) ([]Object, []byte, error)
	// Close releases the bucket.
	Close() error
}

// contentType of every object: the repository stores opaque bytes.
const contentType = "application/octet-stream"

// BucketBackend returns the Backend over b.
func BucketBackend(b *blob.Bucket) Backend { return bucketBackend{b} }

type bucketBackend struct{ b *blob.Bucket }

func (bb bucketBackend) Stat(ctx context.Context, key string) (Object, error) {
	a, err := bb.b.Attributes(ctx, key)
	if err != nil {
		return Object{}, err
	}
	return Object{Key: key, Size: a.Size, ModTime: a.ModTime}, nil
}

func (bb bucketBackend) NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	return bb.b.NewRangeReader(ctx, key, offset, length, nil)
}

// Upload goes through Bucket.Upload for every driver: in gocloud.dev v0.47 the
// azureblob Writer dereferences nil in Close when the upload failed, which includes
// every create-only write that loses; Upload reports those as FailedPrecondition.
func (bb bucketBackend) Upload(ctx context.Context, key string, data []byte, createOnly bool) error {
	return bb.b.Upload(ctx, key, bytes.NewReader(data), &blob.WriterOptions{
		ContentType: contentType,
		IfNotExist:  createOnly,
	})
}

func (bb bucketBackend) Delete(ctx context.Context, key string) error { return bb.b.Delete(ctx, key) }

func (bb bucketBackend) ListPage(ctx context.Context, prefix string, token []byte, pageSize int) ([]Object, []byte, error) {
	if token == nil {
		token = blob.FirstPageToken
	}
	page, next, err := bb.b.ListPage(ctx, token, pageSize, &blob.ListOptions{Prefix: prefix})
	if err != nil {
		return nil, nil, err
	}
	objs := make([]Object, 0, len(page))
	for _, o := range page {
		if o.IsDir { // only with a delimiter, which is never set; kept for safety
			continue
		}
		objs = append(objs, Object{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
	}
	return objs, next, nil
}

func (bb bucketBackend) Close() error { return bb.b.Close() }
