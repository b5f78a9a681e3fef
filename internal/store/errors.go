package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
)

var (
	// ErrNotFound is wrapped by errors for a key that does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExists is wrapped by the error of a PutIfAbsent whose key is already taken:
	// the create-only write lost.
	ErrExists = errors.New("object already exists")
	// ErrPermission is wrapped by errors caused by missing, invalid or insufficient
	// credentials.
	ErrPermission = errors.New("access denied")
	// ErrNoBucket is wrapped by the error of Check when the bucket or container does
	// not exist.
	ErrNoBucket = errors.New("bucket does not exist")
)

// Operation names used in error messages.
const (
	opCheck  = "check"
	opGet    = "get"
	opRead   = "read"
	opPut    = "put"
	opCreate = "create" // PutIfAbsent
	opDelete = "delete"
	opStat   = "stat"
	opList   = "list"
)

// statusCoder is implemented by the HTTP response errors of the AWS SDK
// (smithy-go's ResponseError).
type statusCoder interface{ HTTPStatusCode() int }

// httpStatus returns the HTTP status of the service response behind err, or 0. The
// drivers map only some service error codes to gcerrors codes (gocloud.dev v0.47:
// S3 maps AccessDenied but not SignatureDoesNotMatch or InvalidAccessKeyId, Azure
// maps AuthenticationFailed but not AuthorizationFailure, GCS maps 403 to NotFound,
// and none maps 5xx); the status fills those gaps. The SDK error types are read,
// never their messages.
func httpStatus(err error) int {
	var sc statusCoder
	if errors.As(err, &sc) {
		return sc.HTTPStatusCode()
	}
	var az *azcore.ResponseError
	if errors.As(err, &az) {
		return az.StatusCode
	}
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g.Code
	}
	return 0
}

// isNotFound, isPrecondition and isPermission classify by gcerrors code. errors.Is
// against the gcerrors sentinels matches both the *gcerr.Error values the drivers
// return (which unwrap to the sentinel of their code) and plain errors that wrap a
// sentinel, as injected faults do.
func isNotFound(err error) bool { return errors.Is(err, gcerrors.ErrNotFound) }

func isPrecondition(err error) bool {
	return errors.Is(err, gcerrors.ErrFailedPrecondition) || errors.Is(err, gcerrors.ErrAlreadyExists)
}

func isPermission(err error) bool {
	if errors.Is(err, gcerrors.ErrPermissionDenied) {
		return true
	}
	s := httpStatus(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// transient reports whether err is worth another try: the failure is in the
// service or the network, not in the request, and the caller still waits.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	switch {
	case isNotFound(err), isPrecondition(err), isPermission(err),
		errors.Is(err, gcerrors.ErrInvalidArgument), errors.Is(err, gcerrors.ErrUnimplemented),
		errors.Is(err, gcerrors.ErrCanceled), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, gcerrors.ErrInternal), errors.Is(err, gcerrors.ErrResourceExhausted),
		errors.Is(err, gcerrors.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		// A deadline inside the SDK (a per-try timeout), since ctx itself is not done.
		return true
	}
	if s := httpStatus(err); s >= 500 || s == http.StatusTooManyRequests || s == http.StatusRequestTimeout {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		// A name that does not resolve stays unresolved; a lookup that timed out may not.
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// fail turns the error of operation op on key into the error the caller sees: it
// names the store and the operation, and wraps the matching sentinel (the
// driver's message is dropped where the sentinel says it all) or else the cause.
// createOnly marks a PutIfAbsent, where a failed precondition means ErrExists.
func (s *Store) fail(ctx context.Context, op, key string, err error, createOnly bool) error {
	where := fmt.Sprintf("%s: %s %q", s.url, op, key)
	if op == opCheck {
		where = fmt.Sprintf("%s: %s", s.url, op)
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("%s: %w", where, err)
		}
		return fmt.Errorf("%s: %w (%w)", where, cerr, err)
	}
	switch {
	case isPermission(err): // first: GCS reports a 403 as NotFound
		return fmt.Errorf("%s: %w: %w", where, ErrPermission, err)
	case isNotFound(err) && op == opCheck:
		return fmt.Errorf("%s: %w", where, ErrNoBucket)
	case isNotFound(err):
		return fmt.Errorf("%s: %w", where, ErrNotFound)
	case createOnly && isPrecondition(err):
		return fmt.Errorf("%s: %w", where, ErrExists)
	}
	return fmt.Errorf("%s: %w", where, err)
}
