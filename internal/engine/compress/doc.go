// Package compress compresses blobs one at a time.
package compress
