package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// member is this broker's registration: its lease and incarnation. A
// broker that loses its lease steps down from every partition at once
// (another broker may already have been given them) and registers again
// under a new incarnation.
type member struct {
	lease *metastore.Lease
	reg   brokerReg
}

func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// incarnation is the current registration's incarnation ("" before the
// first registration).
func (b *Broker) incarnation() string {
	b.memberMu.Lock()
	defer b.memberMu.Unlock()
	if b.member == nil {
		return ""
	}
	return b.member.reg.Incarnation
}

func (b *Broker) currentMember() *member {
	b.memberMu.Lock()
	defer b.memberMu.Unlock()
	return b.member
}

// register writes this broker's registration under a new lease.
func (b *Broker) register(ctx context.Context, draining bool) error {
	lease, err := b.meta.GrantLease(ctx, b.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	reg := brokerReg{
		NodeID: b.cfg.NodeID, Host: b.advHost, Port: b.advPort, Rack: b.cfg.Rack,
		Incarnation: newIncarnation(), Draining: draining, StartedMs: time.Now().UnixMilli(),
	}
	val, _ := json.Marshal(reg)
	if _, err := b.meta.Txn().PutWithLease(brokerKey(b.cfg.NodeID), val, lease).Commit(ctx); err != nil {
		_ = lease.Revoke(context.Background())
		return fmt.Errorf("broker: registering: %w", err)
	}
	b.memberMu.Lock()
	b.member = &member{lease: lease, reg: reg}
	b.memberMu.Unlock()
	b.log.Info("broker registered", "node", reg.NodeID, "incarnation", reg.Incarnation, "lease_ttl", lease.TTL(), "advertised", fmt.Sprintf("%s:%d", reg.Host, reg.Port))
	return nil
}

// setDraining marks the registration draining: the controller moves this
// broker's partitions and coordinators away (graceful shutdown).
func (b *Broker) setDraining(ctx context.Context) error {
	m := b.currentMember()
	if m == nil {
		return errors.New("not registered")
	}
	reg := m.reg
	reg.Draining = true
	val, _ := json.Marshal(reg)
	if _, err := b.meta.Txn().PutWithLease(brokerKey(b.cfg.NodeID), val, m.lease).Commit(ctx); err != nil {
		return err
	}
	b.memberMu.Lock()
	b.member.reg = reg
	b.memberMu.Unlock()
	return nil
}

// runMembership keeps the registration alive: when the lease ends, it
// steps down from everything and registers again.
func (b *Broker) runMembership() {
	for {
		m := b.currentMember()
		select {
		case <-b.closing:
			return
		case <-m.lease.Done():
		}
		select {
		case <-b.closing:
			return
		default:
		}
		b.log.Warn("broker lease lost: stepping down from every partition and registering again")
		b.m.leaseLost.Inc()
		b.stepDownAll()
		backoff := 100 * time.Millisecond
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := b.register(ctx, false)
			cancel()
			if err == nil {
				break
			}
			b.log.Warn("registering again failed", "err", err)
			select {
			case <-b.closing:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		b.clusterChanged()
	}
}

// stepDownAll gives up every partition this broker leads.
func (b *Broker) stepDownAll() {
	for _, t := range b.topics.all() {
		for _, p := range t.partitions() {
			p.stepDown()
		}
	}
	b.view.poke()
}
