// Package crashpoint marks the places where a process dying would leave a repository
// half-written: between a pack and its index, an index and its snapshot, the deletions
// of forget and prune. Tests of crash consistency build the program with
// `-tags crashpoints` and set STASH_CRASH_AT="name" or "name#N": the N-th time (default
// the first) the process reaches Hit(name) it sends itself SIGKILL, a real kill that runs
// no deferred cleanup. In a normal build Hit does nothing and the compiler inlines it
// away.
package crashpoint

// EnvVar names the point a crashpoints build dies at.
const EnvVar = "STASH_CRASH_AT"
