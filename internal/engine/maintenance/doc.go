// Package maintenance holds repository operations that need both the repository and the
// snapshot trees. Prune walks every snapshot's trees (internal/engine/snapshot, which
// imports internal/engine/repo), so it cannot live in repo; the steps that touch the
// format (reading whole index files, repacking, rewriting the index, deleting) are in
// repo/prune.go, in the write order of docs/repository-format.md "Prune".
package maintenance
