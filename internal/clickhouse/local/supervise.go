package local

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Supervisor keeps a managed server running: when its process dies (a
// crash, the OOM killer, an operator's kill), it is started again on the
// same directory and ports, so the clients that use it need nothing new,
// after a backoff that doubles from a second up to MaxBackoff. Meanwhile
// whatever depends on it sees it unavailable (ingest keeps acknowledging
// into its spool, which drains when the server is back).
type Supervisor struct {
	cfg        Config
	maxBackoff time.Duration

	mu       sync.Mutex
	srv      *Server
	restarts int
	stop     chan struct{}
	done     chan struct{}
}

// Supervise watches srv (started with cfg) until Stop.
func Supervise(srv *Server, maxBackoff time.Duration) *Supervisor {
	cfg := srv.cfg
	cfg.HTTPPort, cfg.TCPPort = srv.httpPort, srv.tcpPort
	s := &Supervisor{cfg: cfg, maxBackoff: maxBackoff, srv: srv, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *Supervisor) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-srv.Exited():
		}
		s.cfg.Log.Error("managed clickhouse exited; restarting it", "dir", s.cfg.Dir, "err", srv.exitErr)
		_ = srv.Stop(context.Background()) // releases the directory
		backoff := time.Second
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(backoff):
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-s.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			next, err := Start(ctx, s.cfg)
			cancel()
			if err == nil {
				s.mu.Lock()
				s.srv = next
				s.restarts++
				s.mu.Unlock()
				s.cfg.Log.Info("managed clickhouse restarted", "dir", s.cfg.Dir, "restarts", s.restarts)
				break
			}
			s.cfg.Log.Error("managed clickhouse restart failed", "dir", s.cfg.Dir, "err", err, "next_try", 2*backoff)
			backoff = min(2*backoff, s.maxBackoff)
		}
	}
}

// Server is the server running now (the last one started).
func (s *Supervisor) Server() *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Stop ends the supervision and stops the server.
func (s *Supervisor) Stop(ctx context.Context) error {
	close(s.stop)
	select {
	case <-s.done:
	case <-ctx.Done():
		return errors.New("local clickhouse: supervisor did not stop in time")
	}
	return s.Server().Stop(ctx)
}
