// Command sign pins the content hashes of the genesis skills and signs the
// pin list with an Ed25519 private key. Run it from the repository root
// after changing a skill under internal/genesis/skills:
//
//	go run ./internal/genesis/cmd/sign -key /path/to/genesis-signing.key
//
// The key may also be named by TALOS_GENESIS_SIGNING_KEY (a path). The key
// file holds the base64 32-byte seed; it never goes into the repository.
// It rewrites internal/genesis/pins.json (each skill's version from its
// skill.yaml, its hash from quarantine.HashDir, min_trust and workspace
// kept from the existing list) and internal/genesis/pins.json.sig.
//
// A new key pair: go run ./internal/genesis/cmd/sign -genkey PATH writes
// the private seed to PATH (mode 0600, never overwriting) and prints the
// public key for genesis.PublicKey.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/talos-ironclad/talos/internal/genesis"
	"github.com/talos-ironclad/talos/quarantine"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sign:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("sign", flag.ContinueOnError)
	keyPath := fl.String("key", os.Getenv("TALOS_GENESIS_SIGNING_KEY"), "file with the base64 Ed25519 seed (default $TALOS_GENESIS_SIGNING_KEY)")
	dir := fl.String("dir", "internal/genesis", "the genesis package folder")
	genkey := fl.String("genkey", "", "write a new private seed to this path and print its public key, then stop")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *genkey != "" {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(*genkey, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("cannot create %s (it is never overwritten): %w", *genkey, err)
		}
		if _, err := fmt.Fprintln(f, base64.StdEncoding.EncodeToString(priv.Seed())); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Printf("public key (set genesis.PublicKey to it): %s\n", base64.StdEncoding.EncodeToString(pub))
		return nil
	}
	if *keyPath == "" {
		return fmt.Errorf("no key: give -key PATH or set TALOS_GENESIS_SIGNING_KEY")
	}
	raw, err := os.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("%s must hold the base64 %d-byte Ed25519 seed", *keyPath, ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)

	old, err := os.ReadFile(filepath.Join(*dir, genesis.PinsFile))
	if err != nil {
		return err
	}
	pins, err := genesis.ParsePins(old)
	if err != nil {
		return err
	}
	byID := map[string]genesis.Pin{}
	for _, p := range pins.Skills {
		byID[p.ID] = p
	}
	entries, err := os.ReadDir(filepath.Join(*dir, genesis.SkillsDir))
	if err != nil {
		return err
	}
	out := genesis.Pins{Format: 1}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sd := filepath.Join(*dir, genesis.SkillsDir, e.Name())
		man, err := quarantine.ReadManifest(sd)
		if err != nil {
			return err
		}
		if man.ID != e.Name() {
			return fmt.Errorf("%s: the folder must be named after the skill's id %q", sd, man.ID)
		}
		c, err := quarantine.HashDir(sd)
		if err != nil {
			return err
		}
		p, ok := byID[man.ID]
		if !ok {
			return fmt.Errorf("%s is not in %s: add {\"id\": %q, \"version\": \"0.0.0\", \"hash\": \"%s\", \"min_trust\": N} with its trust level first", man.ID, genesis.PinsFile, man.ID, strings.Repeat("0", 64))
		}
		p.Version, p.Hash = man.Version, c.Hash
		out.Skills = append(out.Skills, p)
	}
	sort.Slice(out.Skills, func(i, j int) bool { return out.Skills[i].ID < out.Skills[j].ID })
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if _, err := genesis.ParsePins(data); err != nil {
		return err
	}
	sig := ed25519.Sign(priv, data)
	if err := os.WriteFile(filepath.Join(*dir, genesis.PinsFile), data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, genesis.SignatureFile), []byte(base64.StdEncoding.EncodeToString(sig)+"\n"), 0o644); err != nil {
		return err
	}
	pub := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	fmt.Printf("signed %d skills with public key %s\n", len(out.Skills), pub)
	if pub != genesis.PublicKey {
		fmt.Printf("genesis.PublicKey differs: set it to %s in internal/genesis/pins.go, or the binary refuses the list\n", pub)
	}
	return nil
}
