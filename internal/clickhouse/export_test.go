package clickhouse

// ReleaseDirForTest lets go of the directory lock as if this herd had died,
// leaving its server running: an orphan for the next StartLocal to find.
func (l *Local) ReleaseDirForTest() error { return l.dirLock.Close() }

// DecodeColumns is SelectColumns' decoder, for the fuzz target.
var DecodeColumns = decodeColumns

// DecodeBlocks is Select's decoder (clickhouse-go's codec): the reference
// the fuzz target holds DecodeColumns to.
var DecodeBlocks = decodeBlocks
