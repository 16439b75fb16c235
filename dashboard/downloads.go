package dashboard

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// DownloadRecorder records who downloaded what (herd.downloads, written by
// a user that may insert; the dashboard's reader may not).
type DownloadRecorder interface {
	RecordDownload(ctx context.Context, user, role, what string) error
}

// DownloadLog records downloads in ClickHouse through a user that may insert
// into the published database.
type DownloadLog struct {
	Writer   *clickhouse.Client
	Database string
}

// RecordDownload inserts one row into downloads.
func (l *DownloadLog) RecordDownload(ctx context.Context, user, role, what string) error {
	blk := proto.NewBlock()
	for _, c := range [][2]string{{"at", "DateTime"}, {"user", "String"}, {"role", "String"}, {"what", "String"}} {
		if err := blk.AddColumn(c[0], column.Type(c[1])); err != nil {
			return err
		}
	}
	if len(what) > 500 {
		what = what[:500]
	}
	if err := blk.Append(time.Now().UTC().Truncate(time.Second), user, role, what); err != nil {
		return err
	}
	return l.Writer.Insert(ctx, l.Database+".downloads", blk)
}
