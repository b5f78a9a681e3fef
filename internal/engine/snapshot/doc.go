// Package snapshot is the backup and restore pipelines over a repository: it walks
// directory trees into trees of nodes with full POSIX metadata and chunked, deduplicated
// file content, and restores them, safely, into a target directory.
//
// Progress is reported through the Progress interface (no-op by default); the pipelines
// never print.
package snapshot
