package ingest

// AppendAccepted is appendAccepted, for the black-box tests.
var AppendAccepted = appendAccepted
