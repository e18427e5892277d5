package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readCapture splits a testdata capture, in the format saveRaw writes
// (--raw), into pgbench's stdout and stderr.
func readCapture(t *testing.T, name string) (stdout, stderr string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "--- stdout\n")
	if !ok {
		t.Fatalf("%s: no stdout section", name)
	}
	stdout, stderr, ok = strings.Cut(rest, "--- stderr\n")
	if !ok {
		t.Fatalf("%s: no stderr section", name)
	}
	return stdout, stderr
}

func TestParseOutputCaptured(t *testing.T) {
	for _, tc := range []struct {
		file    string
		want    Result
		wantErr string
		clean   bool
	}{
		{
			file:  "pgbench15-select-simple-ok.txt",
			want:  Result{TPS: 26486.14174, LatencyMs: 0.604, Txns: 76205},
			clean: true,
		},
		{
			file:  "pgbench15-tpcb-extended-ok.txt",
			want:  Result{TPS: 4886.960948, LatencyMs: 3.274, Txns: 14249},
			clean: true,
		},
		{
			// pgbouncer 1.18 in transaction mode with -M prepared: most
			// clients abort, the survivors still produce figures.
			file: "pgbench15-prepared-pgbouncer118-aborted.txt",
			want: Result{TPS: 33427.421572, LatencyMs: 0.479, Txns: 96067, Aborted: true, AbortedClients: 12,
				Errors: 21, FirstError: `pgbench: error: ERROR:  prepared statement "P_0" already exists`},
		},
		{
			// Every client blocked for the whole run: no latency, no tps.
			file:    "pgbench15-tpcb-no-transactions.txt",
			want:    Result{},
			wantErr: "no transaction completed",
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			stdout, stderr := readCapture(t, tc.file)
			got, err := ParseOutput(stdout, stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if got.Clean() != tc.clean {
				t.Fatalf("Clean() = %v, want %v", got.Clean(), tc.clean)
			}
		})
	}
}

// pgbench before 14 printed two tps lines; the one without connection
// setup is the comparable one.
func TestParseOutputOldTPSLines(t *testing.T) {
	stdout := `number of transactions actually processed: 1000/1000
latency average = 1.000 ms
tps = 900.5 (including connections establishing)
tps = 1000.25 (excluding connections establishing)
`
	got, err := ParseOutput(stdout, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.TPS != 1000.25 || got.Txns != 1000 {
		t.Fatalf("got %+v", got)
	}
}

func TestParseOutputGarbage(t *testing.T) {
	if _, err := ParseOutput("pgbench: error: connection refused\n", ""); err == nil {
		t.Fatal("no error for output without tps")
	}
	if _, err := ParseOutput("tps = fast\n", ""); err == nil {
		t.Fatal("no error for a non-numeric tps")
	}
}

func TestFirstErrorLine(t *testing.T) {
	_, stderr := readCapture(t, "pgbench15-prepared-pgbouncer118-aborted.txt")
	if got, want := FirstErrorLine("", stderr), `pgbench: error: ERROR:  prepared statement "P_0" already exists`; got != want {
		t.Fatalf("FirstErrorLine = %q, want %q", got, want)
	}
	// Without an error marker, the first line that says anything.
	if got := FirstErrorLine("", "\n  could not connect\nmore\n"); got != "could not connect" {
		t.Fatalf("FirstErrorLine = %q", got)
	}
	if got := FirstErrorLine("only stdout\n", ""); got != "only stdout" {
		t.Fatalf("FirstErrorLine = %q", got)
	}
}

func TestRunSpecArgs(t *testing.T) {
	s := RunSpec{Workload: SelectOnly, Protocol: "prepared", Clients: 1, Threads: 2, Seconds: 10,
		Host: "127.0.0.1", Port: 6000, User: "app", DB: "app"}
	want := "-n -c 1 -j 1 -T 10 -M prepared -S -h 127.0.0.1 -p 6000 -U app app"
	if got := strings.Join(s.Args(), " "); got != want {
		t.Fatalf("Args = %s, want %s", got, want)
	}
	s.Workload, s.Clients = TPCB, 64
	want = "-n -c 64 -j 2 -T 10 -M prepared -h 127.0.0.1 -p 6000 -U app app"
	if got := strings.Join(s.Args(), " "); got != want {
		t.Fatalf("Args = %s, want %s", got, want)
	}
}
