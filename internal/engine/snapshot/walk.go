package snapshot

import (
	"context"
	"fmt"
	"path"

	"github.com/kubectl-stash/kubectl-stash/internal/engine/crypto"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
)

// Walk calls fn for every node of the tree id, depth first in name order, with the node's
// absolute path in the snapshot.
func Walk(ctx context.Context, r *repo.Repository, id crypto.ID, fn func(p string, n *Node) error) error {
	return walk(ctx, r, "/", id, fn)
}

func walk(ctx context.Context, r *repo.Repository, dir string, id crypto.ID, fn func(string, *Node) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := r.LoadBlob(ctx, id, nil)
	if err != nil {
		return err
	}
	t, err := decodeTree(b)
	if err != nil {
		return fmt.Errorf("tree %s at %s: %w", id.Short(), dir, err)
	}
	for _, n := range t.Nodes {
		p := path.Join(dir, n.FileName())
		if err := fn(p, n); err != nil {
			return err
		}
		if n.Type == TypeDir {
			if err := walk(ctx, r, p, *n.Subtree, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
