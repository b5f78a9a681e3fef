package main

// The storage drivers the job image can open repositories with. Only main packages (and
// tests) import drivers; internal/store opens whatever is registered.
import (
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
)
