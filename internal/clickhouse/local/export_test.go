package local

// ReleaseDirForTest lets go of the directory lock as if this herd had died,
// leaving its server running: an orphan for the next Start to find.
func (l *Server) ReleaseDirForTest() error { return l.dirLock.Close() }
