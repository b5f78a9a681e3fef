package crashpoint

// The crash points, in the order an operation reaches them. Each is a moment at which the
// repository holds a state that the next operation must accept: see
// docs/repository-format.md for the write order (packs, then index, then snapshot; prune
// writes its new packs and index before it deletes anything).
const (
	// LockWritten: the lock object is stored, its holder not yet checked for conflicts.
	LockWritten = "lock.written"

	// BackupChunk: a chunk of a file was read and handed to the repository.
	BackupChunk = "backup.chunk"
	// BackupPackPartial: a blob was added to a pack that is not stored yet (a spooled
	// pack of a file:// repository is partly written to a temporary file).
	BackupPackPartial = "backup.pack-partial"
	// BackupPackStored: a pack is stored, no index lists it yet.
	BackupPackStored = "backup.pack-stored"
	// BackupPacksFlushed: every pack is stored, the last index file is not written.
	BackupPacksFlushed = "backup.packs-flushed"
	// BackupIndexWritten: an index file is written, the snapshot is not.
	BackupIndexWritten = "backup.index-written"
	// BackupSnapshotSaved: the snapshot is written, the lock not yet released.
	BackupSnapshotSaved = "backup.snapshot-saved"

	// ForgetSnapshotRemoved: forget removed one of the snapshots it removes.
	ForgetSnapshotRemoved = "forget.snapshot-removed"

	// PrunePlanned: prune holds its exclusive lock and knows what to do, nothing is
	// written yet.
	PrunePlanned = "prune.planned"
	// PrunePackRepacked: one of the packs holding repacked blobs is stored.
	PrunePackRepacked = "prune.pack-repacked"
	// PruneIndexWritten: the new index is written, the old index files still exist.
	PruneIndexWritten = "prune.index-written"
	// PruneIndexDeleted: one old index file is deleted.
	PruneIndexDeleted = "prune.index-deleted"
	// PrunePackDeleted: one unused pack is deleted.
	PrunePackDeleted = "prune.pack-deleted"
	// PruneDone: every deletion is done, the lock not yet released.
	PruneDone = "prune.done"
)
