package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The licence source takes every regular file but the held-out GPL-3, and
// skips symbolic links (Debian's GPL → GPL-3).
func TestLicencesKeepGPL3Unseen(t *testing.T) {
	dir := t.TempDir()
	para := strings.Repeat("Permission is hereby granted to use, copy and modify this software. ", 4)
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("GPL-3", "GNU GENERAL PUBLIC LICENSE Version 3. "+para)
	write("Apache-2.0", "Apache License. "+para+"\n\n"+strings.Repeat("Licensed under the Apache License, Version 2.0. ", 4))
	if err := os.Symlink("GPL-3", filepath.Join(dir, "GPL")); err != nil {
		t.Fatal(err)
	}
	c := &corpus{seen: map[string]bool{}, packages: map[string]string{}}
	if err := c.licences(dir); err != nil {
		t.Fatal(err)
	}
	if len(c.samples) == 0 {
		t.Fatal("no licence samples")
	}
	for _, s := range c.samples {
		if s.Dataset != "licence" || !strings.HasPrefix(s.ID, "licence:Apache-2.0#") || strings.Contains(s.Text, "GNU GENERAL") {
			t.Errorf("unexpected sample %+v", s)
		}
	}
}
