package tlog

import (
	"context"
	"log/slog"
	"testing"
)

func benchWrite(b *testing.B, tier Tier, opts Options) {
	dir := b.TempDir()
	h, err := Open(dir, tier, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	l := slog.New(h)
	ctx := WithCorrelationID(context.Background(), NewCorrelationID())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.LogAttrs(ctx, slog.LevelInfo, "sockproxy_denied", slog.String("path", "/containers/create"), slog.Int("i", i))
	}
}

func BenchmarkTier1Synced(b *testing.B) { benchWrite(b, Tier1, Options{}) }
func BenchmarkTier1NoSync(b *testing.B) { benchWrite(b, Tier1, Options{NoSync: true}) }
func BenchmarkTier2(b *testing.B)       { benchWrite(b, Tier2, Options{}) }
func BenchmarkTier1Rotating(b *testing.B) {
	benchWrite(b, Tier1, Options{NoSync: true, MaxSize: 64 << 10})
}

func BenchmarkVerify10k(b *testing.B) {
	dir := b.TempDir()
	h, err := Open(dir, Tier1, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	l := slog.New(h)
	for i := 0; i < 10000; i++ {
		l.Info("event", "i", i)
	}
	h.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Verify(dir); err != nil {
			b.Fatal(err)
		}
	}
}
