package main

// The storage drivers the plugin opens repositories with from the user's machine
// (`kubectl stash snapshots`, `repo create --init`, `repo delete --wipe-data`), with the
// credentials of the repository Secret. Only main packages (and tests) import drivers;
// internal/store opens whatever is registered.
import (
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
)
