package config

import (
	"math"
	"testing"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		out  string
	}{
		{"0", 0, "0"},
		{"0MB", 0, "0"},
		{"1", 1, "1B"},
		{"1000", 1000, "1000B"},
		{"1024", 1024, "1kB"},
		{"100B", 100, "100B"},
		{"512kB", 512 << 10, "512kB"},
		{"64MB", 64 << 20, "64MB"},
		{" 16 MB ", 16 << 20, "16MB"},
		{"1024MB", 1 << 30, "1GB"},
		{"1GB", 1 << 30, "1GB"},
		{"1.5GB", 3 << 29, "1536MB"},
		{"2TB", 2 << 40, "2TB"},
		{"8388607TB", 8388607 << 40, "8388607TB"},
		{"9223372036854775807", math.MaxInt64, "9223372036854775807B"},
		{"-1kB", -1024, "-1kB"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseByteSize = %d, %v; want %d", got, err, tt.want)
			}
			if got.String() != tt.out {
				t.Errorf("String = %q, want %q", got.String(), tt.out)
			}
			var back ByteSize
			if err := back.UnmarshalText([]byte(got.String())); err != nil || back != got {
				t.Errorf("round trip = %d, %v", back, err)
			}
		})
	}
	for _, bad := range []string{"", "lots", "MB", "64 M", "64mb", "64KB", "1e3", "1.2.3MB", "--1", "8388608TB", "99999999999999999999", "64MiB"} {
		t.Run("bad "+bad, func(t *testing.T) {
			if got, err := ParseByteSize(bad); err == nil {
				t.Errorf("ParseByteSize(%q) = %d, want an error", bad, got)
			}
		})
	}
}
