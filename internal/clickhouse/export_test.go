package clickhouse

// DecodeColumns is SelectColumns' decoder, for the fuzz target.
var DecodeColumns = decodeColumns

// DecodeBlocks is Select's decoder (clickhouse-go's codec): the reference
// the fuzz target holds DecodeColumns to.
var DecodeBlocks = decodeBlocks
