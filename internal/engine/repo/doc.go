// Package repo is the repository: config and key files, blobs packed into pack files, the
// index, snapshots and locks, in the format and write order of docs/repository-format.md.
//
// Writes follow one rule: an object is referenced only after it is stored. Packs are
// uploaded before the index file that lists them, and the index before any snapshot whose
// trees need it, so a process killed at any instant leaves a valid repository.
package repo
