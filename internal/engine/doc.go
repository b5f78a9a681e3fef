// Package engine is the home of the backup engine: content-defined chunking (chunker),
// compression (compress), encryption (crypto), the repository (repo) and the backup and
// restore pipelines (snapshot). Nothing under it imports Kubernetes, cobra or charm: it
// could ship as a standalone backup tool.
package engine
