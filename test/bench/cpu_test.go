package bench

import (
	"os"
	"testing"
)

func TestParseProcStatCaptured(t *testing.T) {
	// /proc/PID/stat of a running shardgate: utime 20, stime 26.
	b, err := os.ReadFile("testdata/proc-stat-shardgate.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseProcStat(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != 46 {
		t.Fatalf("ticks = %d, want 46", got)
	}
}

func TestParseProcStatOddCommand(t *testing.T) {
	// The command name may contain spaces and ')'; fields count from the
	// last ')'. utime 7, stime 5.
	stat := "42 (we ird) (name)) S 1 42 42 0 -1 4194560 10 0 0 0 7 5 0 0 20 0 1 0 100 0 0\n"
	got, err := ParseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 12 {
		t.Fatalf("ticks = %d, want 12", got)
	}
	for _, bad := range []string{"", "42 no parens", "42 (x) S 1 2 3", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 u s"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q): no error", bad)
		}
	}
}

func TestProcCPUTicksSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no procfs")
	}
	if _, err := ProcCPUTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestMicrosPerTxn(t *testing.T) {
	// 150 ticks at 100 Hz = 1.5 s of CPU over 10,000 transactions.
	if got := MicrosPerTxn(150, 100, 10000); got != 150 {
		t.Fatalf("MicrosPerTxn = %v, want 150", got)
	}
	if got := MicrosPerTxn(150, 100, 0); got >= 0 {
		t.Fatalf("MicrosPerTxn with no transactions = %v, want negative", got)
	}
}
