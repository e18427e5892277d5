package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcTimes is what /proc/PID/stat says about a process's CPU use, in
// clock ticks.
type ProcTimes struct {
	PPid int
	// Self is utime+stime of the process's own threads.
	Self uint64
	// Reaped is cutime+cstime: children that exited and were waited for.
	Reaped uint64
}

// ParseProcTimes reads the parent pid and the CPU times of a
// /proc/PID/stat line, counting fields from the last ')' as ParseProcStat
// does.
func ParseProcTimes(stat []byte) (ProcTimes, error) {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcTimes{}, errors.New("bench: /proc stat without a command field")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return ProcTimes{}, fmt.Errorf("bench: /proc stat has %d fields after the command, want at least 15", len(f))
	}
	var v [5]uint64
	for j, k := range []int{1, 11, 12, 13, 14} {
		n, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return ProcTimes{}, fmt.Errorf("bench: non-numeric field %d (%q) in /proc stat", k+3, f[k])
		}
		v[j] = n
	}
	return ProcTimes{PPid: int(v[0]), Self: v[1] + v[2], Reaped: v[3] + v[4]}, nil
}

// TreeTicks is the CPU a server has used: its postmaster's own time, the
// time of its children that exited (reaped), and that of its live
// children (backends, parallel workers, background processes). A backend
// alive at one reading and reaped by the next is counted once either way,
// so differences of readings are the CPU spent in between.
func TreeTicks(postmaster int, procs map[int]ProcTimes) uint64 {
	pm, ok := procs[postmaster]
	if !ok {
		return 0
	}
	total := pm.Self + pm.Reaped
	for pid, p := range procs {
		if p.PPid == postmaster && pid != postmaster {
			total += p.Self
		}
	}
	return total
}

// readProcs reads /proc/*/stat once; processes that vanish meanwhile are
// skipped.
func readProcs() (map[int]ProcTimes, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	procs := make(map[int]ProcTimes, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if t, err := ParseProcTimes(b); err == nil {
			procs[pid] = t
		}
	}
	return procs, nil
}

// postmasterPID reads the pid in dataDir/postmaster.pid.
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bench: bad postmaster.pid in %s", dataDir)
	}
	return pid, nil
}

// ServerCPUTicks sums TreeTicks over the servers with these data
// directories.
func ServerCPUTicks(dataDirs ...string) (uint64, error) {
	procs, err := readProcs()
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, d := range dataDirs {
		pm, err := postmasterPID(d)
		if err != nil {
			return 0, err
		}
		if _, ok := procs[pm]; !ok {
			return 0, fmt.Errorf("bench: postmaster %d of %s is not running", pm, d)
		}
		total += TreeTicks(pm, procs)
	}
	return total, nil
}
