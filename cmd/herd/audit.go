package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"

	"github.com/herd-analytics/herd/audit"
)

// runAudit checks the privacy model against the live databases; any
// violation makes the exit status non-zero.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", stderr)
	var (
		base   baseFlags
		pub    publishFlags
		asJSON = fs.Bool("json", false, "print the report as JSON")
	)
	pub.register(fs)
	log, err := base.parse(fs, args, stderr, "warn")
	if err != nil {
		return err
	}
	if err := pub.validate(); err != nil {
		return err
	}
	st, p, err := openPublisher(ctx, &base, pub, log, true, false)
	if err != nil {
		return err
	}
	defer st.close()
	a := &audit.Auditor{Publisher: p, Reader: st.reader, KeyFile: filepath.Join(base.store.dataDir, "keys", "day-keys.json")}
	if st.zk != nil {
		a.SharedKeys = st.zk
	}
	rep, err := a.Audit(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printAudit(stdout, rep)
	}
	if !rep.OK {
		return errAuditFailed
	}
	return nil
}
