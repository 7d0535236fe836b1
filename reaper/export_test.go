package reaper

// Waiters returns how many WaitPID calls wait for pid, so a test can make
// sure it asked before the child exits.
func (r *Reaper) Waiters(pid int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waitPID[pid])
}
