package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// DefaultClockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times. The
// kernel fixes it at 100 on every mainstream Linux architecture whatever
// its internal HZ, so it is a safe fallback when getconf is missing.
const DefaultClockTicks = 100

// ClockTicks asks `getconf CLK_TCK` for USER_HZ, falling back to
// DefaultClockTicks.
func ClockTicks(ctx context.Context) int {
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err != nil {
		return DefaultClockTicks
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		return DefaultClockTicks
	}
	return n
}

// ParseProcStat returns utime+stime, in clock ticks, from the contents of
// /proc/PID/stat. The times cover all of the process's threads, which is
// what a multi-threaded Go proxy needs. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
func ParseProcStat(stat []byte) (uint64, error) {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc stat without a command field")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15), so utime is the
	// 12th field from here.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc stat has %d fields after the command, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: non-numeric utime %q or stime %q in /proc stat", f[11], f[12])
	}
	return utime + stime, nil
}

// ProcCPUTicks reads utime+stime of pid.
func ProcCPUTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return ParseProcStat(b)
}

// MicrosPerTxn turns a CPU tick delta over txns transactions into
// microseconds per transaction; it returns -1 when there is nothing to
// divide by.
func MicrosPerTxn(ticks uint64, hz int, txns int64) float64 {
	if txns <= 0 || hz <= 0 {
		return -1
	}
	return float64(ticks) * 1e6 / float64(hz) / float64(txns)
}
