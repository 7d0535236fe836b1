package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/genesis"
	"github.com/talos-ironclad/talos/quarantine"
)

func TestGenkeyAndSign(t *testing.T) {
	t.Setenv("TALOS_GENESIS_SIGNING_KEY", "")
	dir := t.TempDir()
	skill := filepath.Join(dir, genesis.SkillsDir, "demo_skill")
	if err := os.MkdirAll(skill, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(skill, "skill.yaml"), []byte("id: demo_skill\nversion: 2.1.0\nlanguage: python\nentry: main.py\n"), 0o644)
	os.WriteFile(filepath.Join(skill, "main.py"), []byte("print('demo')\n"), 0o644)
	os.WriteFile(filepath.Join(dir, genesis.PinsFile), []byte(`{"format":1,"skills":[{"id":"demo_skill","version":"0.0.0","hash":"`+strings.Repeat("0", 64)+`","min_trust":3}]}`), 0o644)

	key := filepath.Join(t.TempDir(), "k")
	if err := run([]string{"-genkey", key}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if err := run([]string{"-genkey", key}); err == nil {
		t.Fatal("genkey overwrote a key")
	}
	if err := run([]string{"-dir", dir}); err == nil {
		t.Fatal("signed without a key")
	}
	if err := run([]string{"-dir", dir, "-key", key}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(key)
	seed, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	data, _ := os.ReadFile(filepath.Join(dir, genesis.PinsFile))
	sig, _ := os.ReadFile(filepath.Join(dir, genesis.SignatureFile))
	pins, err := genesis.VerifyPins(data, sig, pub)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := quarantine.HashDir(skill)
	if len(pins.Skills) != 1 || pins.Skills[0].Hash != c.Hash || pins.Skills[0].Version != "2.1.0" || pins.Skills[0].MinTrust != 3 {
		t.Fatalf("pins: %+v", pins)
	}
	// A skill folder without a pin entry is refused.
	other := filepath.Join(dir, genesis.SkillsDir, "new_skill")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "skill.yaml"), []byte("id: new_skill\nversion: 1.0.0\nlanguage: python\nentry: main.py\n"), 0o644)
	os.WriteFile(filepath.Join(other, "main.py"), []byte("print(1)\n"), 0o644)
	if err := run([]string{"-dir", dir, "-key", key}); err == nil || !strings.Contains(err.Error(), "new_skill is not in") {
		t.Fatalf("unpinned skill: %v", err)
	}
}
