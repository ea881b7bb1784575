package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// OrphanAge is the age past which a temporary file or folder is an orphan whatever process id it names (the id
// may have been given to another process since).
const OrphanAge = 24 * time.Hour

// tempPattern is the os.CreateTemp / os.MkdirTemp pattern of a temporary sibling of name, owned by this process.
func tempPattern(name string) string {
	return fmt.Sprintf(".%s.tmp-%d-*", name, os.Getpid())
}

// tempOwner returns the process id in the name of a temporary sibling of name (".NAME.tmp-PID-RANDOM"), and
// whether the name is one at all.
func tempOwner(entry, name string) (pid int, ok bool) {
	rest, found := strings.CutPrefix(entry, "."+name+".tmp-")
	if !found {
		return 0, false
	}
	digits, _, found := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(digits)
	if !found || err != nil {
		return 0, true // Written by an older version: no owner recorded.
	}
	return pid, true
}

// ProcessGone reports whether no process with id pid exists on this machine.
func ProcessGone(pid int) bool {
	if pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// CleanOrphans removes the temporary siblings of name in dir that Write and ReplaceDir left behind when their
// process was killed: those whose process is gone, and those older than OrphanAge. It returns the paths it
// removed; what cannot be removed is left for the next call.
func CleanOrphans(dir, name string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		pid, ok := tempOwner(e.Name(), name)
		if !ok || pid == os.Getpid() {
			continue
		}
		info, err := e.Info()
		if err != nil || !(ProcessGone(pid) || time.Since(info.ModTime()) > OrphanAge) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if os.RemoveAll(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}
