package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
)

func TestGeneratePasswordMeetsPolicy(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 500; i++ {
		p, err := GeneratePassword(GeneratedPasswordLen)
		if err != nil {
			t.Fatal(err)
		}
		if probs := PasswordProblems("BASIC_AUTH_PASS", p); len(probs) != 0 || len(p) != GeneratedPasswordLen || seen[p] {
			t.Fatalf("%q: %v", p, probs)
		}
		seen[p] = true
		if entries, err := ParseEnvFile([]byte("X=" + p + "\n")); err != nil || entries[0].Value != p {
			t.Fatalf("%q does not survive talos.env unquoted: %v", p, err)
		}
	}
	if p, _ := GeneratePassword(3); len(p) != MinPasswordLen {
		t.Errorf("short request not raised: %d", len(p))
	}
	id, err := NewInstanceID()
	if err != nil || checkUUIDv4(id) != "" {
		t.Errorf("instance id %q %v", id, err)
	}
}

func TestWriteInitialFiles(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := WriteInitialFiles(home, false)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{res.EnvFile: 0o600, res.ConfigFile: 0o644} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v", p, st.Mode(), err)
		}
	}
	c, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)})
	if err != nil {
		t.Fatalf("fresh init does not validate: %v", err)
	}
	if c.InstanceID == "" || c.BasicAuthPass == "" || c.Origin["BASIC_AUTH_PASS"] != "talos.env:9" {
		t.Errorf("generated values missing: %q %s", c.InstanceID, c.Origin["BASIC_AUTH_PASS"])
	}
	first, _ := os.ReadFile(res.EnvFile)

	// Second run refuses and changes nothing.
	_, err = WriteInitialFiles(home, false)
	if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrite not refused: %v", err)
	}
	if again, _ := os.ReadFile(res.EnvFile); string(again) != string(first) {
		t.Fatal("refused init still changed talos.env")
	}
	// --force replaces with fresh secrets.
	if _, err := WriteInitialFiles(home, true); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(res.EnvFile); string(again) == string(first) {
		t.Fatal("--force kept the old secrets")
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(filepath.Join(home, "config"))
	if len(ents) != 2 {
		t.Errorf("config dir: %v", ents)
	}
}

// Uncommenting every line of the default config.yaml gives the defaults.
func TestDefaultYAMLRoundTrip(t *testing.T) {
	home := t.TempDir()
	text := string(DefaultYAML())
	if entries, probs := ParseYAML([]byte(text)); len(entries) != 0 || len(probs) != 0 {
		t.Fatalf("commented file is not empty: %v %v", entries, probs)
	}
	uncomment := regexp.MustCompile(`(?m)^# ([a-z0-9_]+: )`)
	writeFile(t, filepath.Join(home, "config", "config.yaml"), uncomment.ReplaceAllString(text, "$1"), 0o644)
	c, err := Load(LoadOptions{Home: home, LookupEnv: env(map[string]string{"BASIC_AUTH_PASS": goodPass})})
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults(home)
	d.BasicAuthPass = goodPass
	n := 0
	for name, origin := range c.Origin {
		if strings.HasPrefix(origin, "config.yaml:") {
			n++
		} else if !IsSecret(name) {
			t.Errorf("%s not in the default config.yaml (from %s)", name, origin)
		}
	}
	c.Origin, d.Origin = nil, nil
	if !reflect.DeepEqual(c, d) {
		t.Errorf("uncommented defaults differ:\n got %+v\nwant %+v", c, d)
	}
	if n != len(Variables())-4 {
		t.Errorf("%d keys in the default config.yaml", n)
	}
}
