// Package store is the repository's view of object storage: a flat namespace of
// immutable objects addressed by slash-separated keys, kept in one portable
// gocloud.dev/blob bucket.
//
// It is the only package that uses gocloud.dev/blob. It imports no storage driver:
// main packages blank-import the drivers they support (s3blob, gcsblob, azureblob,
// fileblob, memblob) and Open selects one by URL scheme.
//
// # URLs
//
//	file:///abs/dir                 a local directory (created when missing)
//	mem://                          an in-memory bucket, private to the Store
//	s3://bucket/prefix?endpoint=http://127.0.0.1:7070&use_path_style=true&region=us-east-1
//	gs://bucket/prefix              STORAGE_EMULATOR_HOST is honoured by the driver
//	azblob://container/prefix       AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT, …
//
// For s3, gs and azblob, a path after the bucket name is a key prefix: the Store
// sees only the keys below it, and the keys it reports are relative to it. The
// ?prefix= parameter of gocloud is accepted too (for every scheme) and is appended to
// the path prefix. Prefixes always name a "directory": a trailing "/" is added, so
// the prefixes "a" and "ab" never see each other's keys. Credentials come from the
// environment, as each driver documents; URL returns a display form of the URL
// without user info and without any parameter that may carry a secret.
//
// # Errors
//
// Every error names the display URL, the operation and the key. Errors are
// classified by gcerrors code, never by message, into the sentinels ErrNotFound,
// ErrExists, ErrPermission and ErrNoBucket; test them with errors.Is. Context
// cancellation is reported as an error wrapping ctx.Err().
//
// # Writes
//
// Put creates or replaces an object. PutIfAbsent creates an object only when the
// key is free (If-None-Match: * on S3, a generation-0 precondition on GCS,
// If-None-Match on Azure) and is the building block for locks and write-once
// objects. For file:// the Store writes objects itself (fileblob's create-only
// check is a stat before a rename, which two writers can both pass): it writes a
// temporary file, syncs it, and links it to its name, which fails atomically if the
// name exists, across processes too.
//
// A file:// Store can also spool (Store.Spool): an object is written piece by piece
// into its temporary file before its name is known, then committed (synced and
// linked, create-only) under a name. A repository writes its data packs so, named
// by the hash of their bytes, without holding them in memory. The other buckets take
// whole objects; Spool says errors.ErrUnsupported there.
//
// # Local directories
//
// fileblob keeps each object in a file named after its key, so one key cannot also
// be the "directory" of others ("a" next to "a/b"); the repository layout avoids
// that. The Store's own writes put their temporary files in .stash-tmp/ inside the
// directory: on the same file system as the objects (a rename from /tmp would fail
// across mounts, as with a repository on a volume) and outside every prefix the
// repository lists.
//
// # Retries
//
// Transient failures (gcerrors Internal, ResourceExhausted and DeadlineExceeded,
// connection resets and refusals, truncated responses, HTTP 5xx and 429 responses)
// are retried with exponential backoff and jitter, up to Options.MaxAttempts tries
// in total. Nothing else is retried, and cancellation of the context stops at once.
// A try that gets no answer within Options.TryTimeout (plus time for the data of an
// upload) is ended and counts as transient, so a service that accepts connections and
// never answers fails the operation instead of hanging it. A streaming download that
// breaks or stalls is resumed from the byte where it stopped.
// A PutIfAbsent whose earlier try failed after the write had in fact landed finds
// the key taken on its retry; it then compares the stored object with its data and
// reports success when they are equal.
//
// The cloud SDKs under the drivers retry some failures of their own; these retries
// come on top and cover what reaches the Store.
package store
