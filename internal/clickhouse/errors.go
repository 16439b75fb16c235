package clickhouse

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// Exception codes herd acts on. The full list is in ClickHouse's
// src/Common/ErrorCodes.cpp; the numbers are stable across releases.
const (
	CodeSyntaxError        = 62
	CodeTableAlreadyExists = 57
	CodeUnknownTable       = 60
	CodeUnknownDatabase    = 81
	CodeDatabaseExists     = 82
	CodeReadonly           = 164
	CodeQueryCancelled     = 394
	CodeAccessDenied       = 291
	CodeAuthFailed         = 193
	CodeUnknownUser        = 192
	CodeTooManyQueries     = 202
	CodeMemoryLimit        = 241
	CodeTimeoutExceeded    = 159
	// CodeQuorumBusy: 18.16 takes one quorum insert per shard at a time
	// ("another quorum insert has been already started", "quorum for
	// previous write has not been satisfied yet"); the next may try again
	// at once.
	CodeQuorumBusy = 286
	// CodeAllReplicasStale: a read through a Distributed table found
	// every replica of a shard further behind than
	// max_replica_delay_for_distributed_queries, and the caller forbade
	// reading a stale one.
	CodeAllReplicasStale = 369
	// CodeTableReadOnly: a Replicated table lost its ZooKeeper session and
	// takes no writes until it has one again.
	CodeTableReadOnly = 242
	// CodeKeeper: ZooKeeper (or Keeper) refused or did not answer.
	CodeKeeper = 999
	// CodeNoReplicas: a Distributed query or a quorum insert found no
	// replica to use.
	CodeNoReplicas = 279
)

// Cause names what an error means for an operator, in a few words that
// point at the part to look at ("ZooKeeper unavailable", "ClickHouse
// unreachable"): for logs, readiness and the publisher's errors, in place
// of a guess. "" when herd cannot tell.
func Cause(err error) string {
	var te *transportError
	switch {
	case err == nil:
		return ""
	case IsCode(err, CodeKeeper):
		return "ZooKeeper unavailable"
	case IsCode(err, CodeTableReadOnly):
		return "replicated tables read-only: their ZooKeeper session is lost"
	case IsCode(err, CodeQuorumBusy):
		return "a replica of the shard is down or behind: the insert quorum is not reached"
	case IsCode(err, CodeAllReplicasStale):
		return "every replica of a shard is behind"
	case IsCode(err, CodeNoReplicas):
		return "no replica of a shard answers"
	case IsCode(err, CodeUnknownTable, CodeUnknownDatabase):
		return "herd's tables are missing: run herd migrate"
	case IsCode(err, CodeAuthFailed, CodeUnknownUser, CodeAccessDenied):
		return "ClickHouse refused herd's user"
	case errors.As(err, &te):
		return "ClickHouse unreachable"
	case errors.Is(err, context.DeadlineExceeded) || IsCode(err, CodeTimeoutExceeded):
		return "ClickHouse did not answer in time"
	}
	return ""
}

// Exception is an error the ClickHouse server reported. Match it with
// errors.As, or test a code with IsCode.
type Exception struct {
	// Code is the server's exception code (0 if the answer carried none).
	Code int
	// Name is the symbolic name newer servers add ("SYNTAX_ERROR"); empty on 18.16.
	Name string
	// Message is the server's text without the code prefix and version suffix.
	Message string
	// Status is the HTTP status of the answer; 200 for an exception that
	// arrived in the middle of a streamed result.
	Status int
}

func (e *Exception) Error() string {
	var b strings.Builder
	b.WriteString("clickhouse: code ")
	b.WriteString(strconv.Itoa(e.Code))
	if e.Name != "" {
		b.WriteString(" (" + e.Name + ")")
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// IsCode reports whether err is, or wraps, a server exception with one of codes.
func IsCode(err error, codes ...int) bool {
	var ex *Exception
	if !errors.As(err, &ex) {
		return false
	}
	for _, c := range codes {
		if ex.Code == c {
			return true
		}
	}
	return false
}

var (
	// 18.16: "Code: 62, e.displayText() = DB::Exception: msg, e.what() = DB::Exception"
	oldException = regexp.MustCompile(`(?s)Code: (\d+), e\.displayText\(\) = (?:DB::Exception: )?(.*?)(?:, e\.what\(\) = [\w:]+)?\s*$`)
	// current: "Code: 62. DB::Exception: msg. (SYNTAX_ERROR) (version 24.3.1.1)"
	newException = regexp.MustCompile(`(?s)Code: (\d+)\. (?:DB::Exception: )?(.*?)(?: \(([A-Z_0-9]+)\))?(?: \(version .*\))?\s*$`)
)

// parseException reads a server error from an HTTP answer body. header is the
// X-ClickHouse-Exception-Code value, which current releases send and 18.16 does not.
func parseException(status int, header string, body []byte) *Exception {
	text := strings.TrimSpace(string(body))
	ex := &Exception{Status: status, Message: text}
	if code, err := strconv.Atoi(header); err == nil {
		ex.Code = code
	}
	if i := strings.LastIndex(text, "Code: "); i >= 0 {
		tail := text[i:]
		if m := oldException.FindStringSubmatch(tail); m != nil {
			ex.Code, _ = strconv.Atoi(m[1])
			ex.Message = m[2]
		} else if m := newException.FindStringSubmatch(tail); m != nil {
			ex.Code, _ = strconv.Atoi(m[1])
			ex.Message, ex.Name = m[2], m[3]
		}
	}
	if ex.Message == "" {
		ex.Message = "empty answer with HTTP status " + strconv.Itoa(status)
	}
	return ex
}

// IsUnavailable reports whether err means the server could not serve the
// request now — down, frozen, too slow for the caller's deadline, or
// overloaded — rather than that the request was wrong. Callers answer 503.
func IsUnavailable(err error) bool {
	var te *transportError
	return errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) ||
		IsCode(err, CodeTooManyQueries, CodeTimeoutExceeded, CodeMemoryLimit)
}
