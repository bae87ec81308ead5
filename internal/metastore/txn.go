package metastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ConflictError is the error of a write whose conditions did not hold. It
// wraps ErrConflict and names the keys whose condition failed, so a caller
// that guards a write with several conditions (say a leader epoch and an
// object index entry) can tell which one moved.
type ConflictError struct {
	// Keys whose condition failed, in the order the conditions were added.
	Keys    []string
	details []string
}

func (e *ConflictError) Error() string {
	return "metastore: conflict: " + strings.Join(e.details, "; ")
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Txn is an atomic, conditional batch of writes: if every condition holds,
// all writes apply at one revision; otherwise none does and Commit returns a
// *ConflictError. Build it with Store.Txn, chain conditions and writes, and
// Commit once. A Txn is not safe for concurrent use.
//
// A key may be written at most once per Txn (etcd rejects duplicates). The
// number of writes, and separately of conditions, is bounded by etcd's
// --max-txn-ops.
type Txn struct {
	s     *Store
	conds []txnCond
	ops   []clientv3.Op
	err   error
}

type txnCond struct {
	key string
	// isValue selects the comparison: value equality, else mod revision.
	isValue bool
	modRev  int64
	value   []byte
}

// Txn starts a transaction.
func (s *Store) Txn() *Txn { return &Txn{s: s} }

// IfModRevision requires the key's ModRevision to equal rev; rev 0 requires
// the key not to exist.
func (t *Txn) IfModRevision(key string, rev int64) *Txn {
	t.conds = append(t.conds, txnCond{key: key, modRev: rev})
	return t
}

// IfValue requires the key to exist with exactly this value.
func (t *Txn) IfValue(key string, value []byte) *Txn {
	t.conds = append(t.conds, txnCond{key: key, isValue: true, value: value})
	return t
}

// Put writes the key.
func (t *Txn) Put(key string, value []byte) *Txn {
	t.ops = append(t.ops, clientv3.OpPut(key, string(value)))
	return t
}

// PutWithLease writes the key attached to the lease: the key is deleted when
// the lease expires or is revoked.
func (t *Txn) PutWithLease(key string, value []byte, l *Lease) *Txn {
	if l == nil {
		t.err = errors.Join(t.err, fmt.Errorf("metastore: put %q with a nil lease", key))
		return t
	}
	t.ops = append(t.ops, clientv3.OpPut(key, string(value), clientv3.WithLease(l.id)))
	return t
}

// Delete removes the key (a missing key is not an error).
func (t *Txn) Delete(key string) *Txn {
	t.ops = append(t.ops, clientv3.OpDelete(key))
	return t
}

// Commit runs the transaction and returns the store revision it produced (the
// current revision if it has no writes). When a condition fails it returns a
// *ConflictError wrapping ErrConflict and nothing is written.
func (t *Txn) Commit(ctx context.Context) (int64, error) {
	if t.err != nil {
		return 0, t.err
	}
	if err := t.s.check(); err != nil {
		return 0, err
	}
	cmps := make([]clientv3.Cmp, 0, len(t.conds))
	// On failure, read every compared key back (in the same revision) to tell
	// which condition failed; conflicts are rare, so the cost rarely matters.
	var elseOps []clientv3.Op
	seen := make(map[string]bool, len(t.conds))
	for _, c := range t.conds {
		if c.isValue {
			cmps = append(cmps, clientv3.Compare(clientv3.Value(c.key), "=", string(c.value)))
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(c.key), "=", c.modRev))
		}
		if !seen[c.key] {
			seen[c.key] = true
			elseOps = append(elseOps, clientv3.OpGet(c.key))
		}
	}
	resp, err := t.s.cli.Txn(ctx).If(cmps...).Then(t.ops...).Else(elseOps...).Commit()
	if err != nil {
		return 0, fmt.Errorf("metastore: txn: %w", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	current := make(map[string]*KV, len(elseOps))
	for _, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			kv := fromPB(rr.Kvs[0])
			current[kv.Key] = &kv
		}
	}
	ce := &ConflictError{}
	for _, c := range t.conds {
		if detail, failed := c.check(current[c.key]); failed {
			ce.Keys = append(ce.Keys, c.key)
			ce.details = append(ce.details, detail)
		}
	}
	if len(ce.Keys) == 0 {
		// Cannot happen while etcd evaluates conditions as we do; keep the
		// error meaningful anyway.
		ce.details = append(ce.details, "a condition failed")
	}
	return 0, ce
}

// check evaluates the condition against the key's value (nil: missing) and
// describes the failure.
func (c txnCond) check(cur *KV) (string, bool) {
	if c.isValue {
		switch {
		case cur == nil:
			return fmt.Sprintf("key %q does not exist, expected a value", c.key), true
		case !bytes.Equal(cur.Value, c.value):
			return fmt.Sprintf("key %q has a different value", c.key), true
		}
		return "", false
	}
	var have int64
	if cur != nil {
		have = cur.ModRevision
	}
	if have == c.modRev {
		return "", false
	}
	switch {
	case c.modRev == 0:
		return fmt.Sprintf("key %q exists (mod revision %d), expected none", c.key, have), true
	case cur == nil:
		return fmt.Sprintf("key %q does not exist, expected mod revision %d", c.key, c.modRev), true
	default:
		return fmt.Sprintf("key %q has mod revision %d, expected %d", c.key, have, c.modRev), true
	}
}
