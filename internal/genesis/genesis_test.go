package genesis_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/genesis"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
)

type nopNotifier struct{}

func (nopNotifier) Notify(context.Context, quarantine.Notice) error { return nil }
func (nopNotifier) Name() string                                    { return "nop" }

func newManager(t *testing.T) (*quarantine.Manager, string) {
	t.Helper()
	return newManagerTB(t)
}

func newManagerTB(t testing.TB) (*quarantine.Manager, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "skills")
	m, err := quarantine.New(quarantine.Config{Dir: dir, CodeKey: bytes.Repeat([]byte{7}, 32)}, quarantinetest.NewStore(), nopNotifier{})
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func auditLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

// TestBuiltinPinsMatchFiles is the build-time pin: the signed list verifies
// with the compiled key and every skill folder in the binary hashes to its
// pin. After editing a skill, re-sign (docs/genesis-signing.md).
func TestBuiltinPinsMatchFiles(t *testing.T) {
	b := genesis.Builtin()
	pins, err := b.Verify()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, p := range pins.Skills {
		ids[p.ID] = true
		dir := filepath.Join("skills", p.ID)
		c, err := quarantine.HashDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash != p.Hash {
			t.Errorf("%s hashes to %s, pinned %s: re-sign with go run ./internal/genesis/cmd/sign", p.ID, c.Hash, p.Hash)
		}
		man, err := quarantine.ReadManifest(dir)
		if err != nil || man.ID != p.ID || man.Version != p.Version {
			t.Errorf("%s: manifest %+v %v", p.ID, man, err)
		}
	}
	entries, _ := fs.ReadDir(b.FS, genesis.SkillsDir)
	for _, e := range entries {
		if !ids[e.Name()] {
			t.Errorf("skill folder %s is not pinned", e.Name())
		}
	}
	if !ids[genesis.FileManager] || !ids[genesis.CodeExecutor] || !ids[genesis.WebScraper] {
		t.Errorf("pins: %v", ids)
	}
}

func signed(t testing.TB, priv ed25519.PrivateKey, data []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, data)))
}

func TestVerifyPinsRefusals(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	good := []byte(`{"format":1,"skills":[{"id":"abc","version":"1.0.0","hash":"` + strings.Repeat("a", 64) + `","min_trust":0}]}`)
	if _, err := genesis.VerifyPins(good, signed(t, priv, good), pub); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(good, []byte(`"min_trust":0`), []byte(`"min_trust":5`), 1)
	cases := map[string]struct {
		data, sig []byte
		pub       ed25519.PublicKey
		code      talos.Code
	}{
		"edited after signing": {tampered, signed(t, priv, good), pub, talos.CodeBadSignature},
		"another key":          {good, signed(t, priv, good), otherPub, talos.CodeBadSignature},
		"empty signature":      {good, nil, pub, talos.CodeBadSignature},
		"signature not base64": {good, []byte("!!"), pub, talos.CodeBadSignature},
		"signed garbage":       {[]byte("{"), signed(t, priv, []byte("{")), pub, talos.CodeSkillSyntax},
	}
	for name, c := range cases {
		if _, err := genesis.VerifyPins(c.data, c.sig, c.pub); talos.CodeOf(err) != c.code {
			t.Errorf("%s: %v, want code %s", name, err, c.code)
		}
	}
	// Every invalid field at once.
	bad := []byte(`{"format":2,"skills":[{"id":"A","version":"x","hash":"y","min_trust":9,"workspace":"all"}]}`)
	_, err := genesis.ParsePins(bad)
	for _, want := range []string{"format 2", "id \"A\"", "version \"x\"", "hash \"y\"", "min_trust 9", "workspace \"all\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePins error %v lacks %q", err, want)
		}
	}
}

func FuzzParsePins(f *testing.F) {
	f.Add([]byte(`{"format":1,"skills":[]}`))
	f.Add([]byte(`{"format":1,"skills":[{"id":"abc","version":"1.0.0","hash":"` + strings.Repeat("a", 64) + `","min_trust":0,"workspace":"read"}]}`))
	f.Add([]byte(`{"format":1}{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := genesis.ParsePins(data)
		if err != nil {
			return
		}
		for _, s := range p.Skills {
			if s.MinTrust < 0 || s.MinTrust > genesis.TrustMax || len(s.Hash) != 64 {
				t.Fatalf("accepted invalid pin %+v", s)
			}
		}
	})
}

func TestAdmitBuiltin(t *testing.T) {
	ctx := context.Background()
	m, dir := newManager(t)
	audit, buf := auditLog()

	rep := genesis.Admit(ctx, genesis.Builtin(), genesis.Config{TrustLevel: 0, Autoload: true}, m, audit, nil)
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	act := rep.Active()
	if len(act) != 1 || act[0].ID != genesis.FileManager || act[0].Writable {
		t.Fatalf("TRUST_LEVEL 0 must activate only a read-only file_manager: %+v", act)
	}
	for _, s := range rep.Skills {
		if !s.Admitted || s.Record.State != quarantine.StatePromoted || s.Record.Source.Type != quarantine.SourceGenesis {
			t.Fatalf("%s not admitted: %+v", s.ID, s)
		}
		if s.ID == genesis.CodeExecutor && !strings.Contains(s.Why, "TRUST_LEVEL 2") {
			t.Errorf("code_executor inactive without the reason: %q", s.Why)
		}
		if s.ID == genesis.DockerControl && !strings.Contains(s.Why, "TRUST_LEVEL 3") {
			t.Errorf("docker_control inactive without the reason: %q", s.Why)
		}
	}

	// The next boot, at level 2: the same records, both active, file_manager writable.
	rep = genesis.Admit(ctx, genesis.Builtin(), genesis.Config{TrustLevel: 2, Autoload: true}, m, audit, nil)
	if len(rep.Active()) != 4 { // file_manager, web_scraper, code_executor, browser_automation
		t.Fatalf("level 2: %+v", rep.Skills)
	}
	for _, s := range rep.Active() {
		if s.ID == genesis.DockerControl {
			t.Fatal("docker_control must need TRUST_LEVEL 3")
		}
	}
	for _, s := range rep.Skills {
		audits, _ := m.Audit(ctx, s.Record.Key)
		if len(audits) != 1 {
			t.Errorf("%s: a second boot appended to the audit trail: %+v", s.ID, audits)
		}
		if s.ID == genesis.FileManager && !s.Writable {
			t.Error("file_manager must be writable at level 2")
		}
	}

	// Autoload off: admitted, none active.
	rep = genesis.Admit(ctx, genesis.Builtin(), genesis.Config{TrustLevel: 5, Autoload: false}, m, audit, nil)
	if len(rep.Active()) != 0 || rep.Skills[0].Why != "SKILL_AUTOLOAD_ENABLED is false" {
		t.Fatalf("autoload off: %+v", rep.Skills)
	}

	// A genesis skill edited on disk: refused at the next boot, in both audit logs.
	fm := filepath.Join(dir, quarantine.ActiveDir, "file_manager-1.0.0", "main.py")
	if err := os.WriteFile(fm, []byte("import socket\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	rep = genesis.Admit(ctx, genesis.Builtin(), genesis.Config{TrustLevel: 5, Autoload: true}, m, audit, nil)
	for _, s := range rep.Skills {
		if s.ID == genesis.FileManager && (s.Active || s.Admitted) {
			t.Fatalf("edited file_manager still admitted: %+v", s)
		}
		if s.ID == genesis.CodeExecutor && !s.Active {
			t.Fatalf("code_executor must stay active: %+v", s)
		}
	}
	if !strings.Contains(buf.String(), `"event":"genesis_refused"`) || !strings.Contains(buf.String(), "file_manager@1.0.0") {
		t.Fatalf("no genesis_refused audit record for file_manager:\n%s", buf.String())
	}
	var fmRec quarantine.Record
	for _, s := range rep.Skills {
		if s.ID == genesis.FileManager {
			fmRec = s.Record
		}
	}
	audits, _ := m.Audit(ctx, fmRec.Key)
	if audits[len(audits)-1].Event != quarantine.EventGenesisRefused {
		t.Fatalf("quarantine audit: %+v", audits)
	}
}

func TestAdmitCorruptBundleStillComesUp(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	audit, buf := auditLog()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cases := map[string]fstest.MapFS{
		"corrupt pin list":   {genesis.PinsFile: {Data: []byte("{not json")}, genesis.SignatureFile: {Data: []byte("AAAA")}},
		"missing signature":  {genesis.PinsFile: {Data: []byte(`{"format":1,"skills":[]}`)}},
		"corrupt but signed": {genesis.PinsFile: {Data: []byte("{not json")}, genesis.SignatureFile: {Data: signed(t, priv, []byte("{not json"))}},
	}
	for name, fsys := range cases {
		buf.Reset()
		rep := genesis.Admit(ctx, genesis.Bundle{FS: fsys, PublicKey: pub}, genesis.Config{TrustLevel: 5, Autoload: true}, m, audit, nil)
		if rep.Err == nil || len(rep.Active()) != 0 {
			t.Errorf("%s: %+v", name, rep)
		}
		if !strings.Contains(buf.String(), "genesis_refused") {
			t.Errorf("%s: no audit record: %s", name, buf.String())
		}
	}
	// A signed list whose skill folder is missing or whose skill.yaml is
	// corrupt: that skill is refused, the call returns.
	hash := strings.Repeat("b", 64)
	pins := []byte(`{"format":1,"skills":[{"id":"ghost","version":"1.0.0","hash":"` + hash + `","min_trust":0},{"id":"broken","version":"1.0.0","hash":"` + hash + `","min_trust":0}]}`)
	fsys := fstest.MapFS{
		genesis.PinsFile:           {Data: pins},
		genesis.SignatureFile:      {Data: signed(t, priv, pins)},
		"skills/broken/skill.yaml": {Data: []byte("id: [")},
		"skills/broken/main.py":    {Data: []byte("print(1)\n")},
	}
	rep := genesis.Admit(ctx, genesis.Bundle{FS: fsys, PublicKey: pub}, genesis.Config{TrustLevel: 5, Autoload: true}, m, audit, nil)
	if rep.Err != nil || len(rep.Skills) != 2 || len(rep.Active()) != 0 {
		t.Fatalf("%+v", rep)
	}
	for _, s := range rep.Skills {
		if s.Admitted || !strings.HasPrefix(s.Why, "refused:") {
			t.Errorf("%s: %+v", s.ID, s)
		}
	}
}
