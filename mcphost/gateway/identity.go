package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	talos "github.com/talos-ironclad/talos"
)

// peerPrefix starts every PeerID.
const peerPrefix = "tp1"

// b32 is lower-case base32 without padding (52 characters for 32 bytes).
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// reName is an identity's name: what `talos identity init --name` takes.
var reName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}$`)

// PeerID names an agent: "tp1" followed by its Ed25519 public key in
// lower-case base32. It is self-certifying: the ID is the key, so a
// signature checks against the ID alone.
type PeerID string

// ParsePeerID checks s and returns its public key.
func ParsePeerID(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(s, peerPrefix)
	if !ok || len(rest) != 52 {
		return nil, fmt.Errorf("peer ID %q is not %s followed by 52 base32 characters", clip(s), peerPrefix)
	}
	b, err := b32.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("peer ID %q is not valid base32 of a 32-byte key", clip(s))
	}
	return ed25519.PublicKey(b), nil
}

// peerIDOf returns the PeerID of a public key.
func peerIDOf(pub ed25519.PublicKey) PeerID { return PeerID(peerPrefix + b32.EncodeToString(pub)) }

// Identity is an agent's Ed25519 key pair and name. The private key never
// leaves it except through WriteFile (mode 0600); String and the log
// attributes show only the name and PeerID.
type Identity struct {
	name string
	priv ed25519.PrivateKey
}

// NewIdentity makes a fresh identity from the system's random source.
func NewIdentity(name string) (*Identity, error) {
	if !reName.MatchString(name) {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "gateway.NewIdentity", "name %s is not allowed: use 1–64 letters, digits, space, '.', '_', '/' or '-'", clip(name))
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, talos.E(talos.CodeSecretMissing, "gateway.NewIdentity", "the system's random source failed", err)
	}
	return &Identity{name: name, priv: priv}, nil
}

// Name returns the identity's name.
func (id *Identity) Name() string { return id.name }

// PeerID returns the identity's PeerID.
func (id *Identity) PeerID() PeerID { return peerIDOf(id.priv.Public().(ed25519.PublicKey)) }

// String shows the name and PeerID, never the key.
func (id *Identity) String() string { return id.name + " (" + string(id.PeerID()) + ")" }

// sign signs msg with the private key.
func (id *Identity) sign(msg []byte) []byte { return ed25519.Sign(id.priv, msg) }

type identityFile struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	PeerID  PeerID `json:"peer_id"`
	Seed    []byte `json:"seed"`
}

// WriteFile stores the identity at path with mode 0600, replacing the file
// atomically (a rename within its directory).
func (id *Identity) WriteFile(path string) error {
	const op = "gateway.Identity.WriteFile"
	b, err := json.Marshal(identityFile{Version: 1, Name: id.name, PeerID: id.PeerID(), Seed: id.priv.Seed()})
	if err != nil {
		return talos.E(talos.CodeDirPermissions, op, "encoding the identity failed", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".identity-*")
	if err != nil {
		return talos.E(talos.CodeDirPermissions, op, "cannot write beside "+path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(b); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return talos.E(talos.CodeDirPermissions, op, "writing the identity to "+path+" failed", err)
	}
	return nil
}

// LoadIdentity reads an identity written by WriteFile. A file readable or
// writable by group or others is refused: fix it with chmod 600.
func LoadIdentity(path string) (*Identity, error) {
	const op = "gateway.LoadIdentity"
	st, err := os.Stat(path)
	if err != nil {
		return nil, talos.E(talos.CodeSecretMissing, op, "no identity at "+path+": create one with `talos identity init --name NAME`", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, talos.Errorf(talos.CodeDirPermissions, op, "identity file %s has mode %04o: it holds a private key; run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, talos.E(talos.CodeSecretMissing, op, "cannot read "+path, err)
	}
	var f identityFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || len(f.Seed) != ed25519.SeedSize {
		return nil, talos.Errorf(talos.CodeSecretMissing, op, "%s is not a version-1 identity file: create a new identity", path)
	}
	id := &Identity{name: f.Name, priv: ed25519.NewKeyFromSeed(f.Seed)}
	if id.PeerID() != f.PeerID {
		return nil, talos.Errorf(talos.CodeBadSignature, op, "%s is corrupt: its key does not match its peer ID", path)
	}
	if !reName.MatchString(f.Name) {
		return nil, errors.Join(talos.Errorf(talos.CodeSecretMissing, op, "%s holds an invalid name", path))
	}
	return id, nil
}

// clip quotes s for an error message, at most 80 characters.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80]
	}
	return fmt.Sprintf("%q", s)
}
