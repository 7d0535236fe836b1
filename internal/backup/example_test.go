package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/talos-ironclad/talos/internal/backup"
)

// Back a home up, lose a file, and restore only the config part.
func Example() {
	home, _ := os.MkdirTemp("", "home")
	defer os.RemoveAll(home)
	os.MkdirAll(filepath.Join(home, "config"), 0o755)
	os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte("trust_level: 1\n"), 0o644)

	var archive bytes.Buffer
	m, err := backup.Create(context.Background(), &archive, backup.Options{Home: home})
	if err != nil {
		fmt.Println(err)
		return
	}
	os.Remove(filepath.Join(home, "config", "config.yaml"))
	plan, err := backup.Restore(context.Background(), &archive, backup.RestoreOptions{Home: home, Parts: []string{backup.PartConfig}})
	b, _ := os.ReadFile(filepath.Join(home, "config", "config.yaml"))
	fmt.Println(len(m.Files), len(plan.Files), err, string(b))
	// Output: 1 1 <nil> trust_level: 1
}
