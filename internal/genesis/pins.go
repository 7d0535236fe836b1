package genesis

import (
	"bytes"
	"crypto/ed25519"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/talos-ironclad/talos"
)

// PinsFile is the pin list inside the bundle: the id, version, content
// hash and trust requirements of every genesis skill, as JSON.
const PinsFile = "pins.json"

// SignatureFile holds the Ed25519 signature over the exact bytes of
// PinsFile, base64-encoded (standard alphabet, one line).
const SignatureFile = "pins.json.sig"

// SkillsDir is the folder of the bundle holding one folder per skill,
// named by the skill's id.
const SkillsDir = "skills"

// PublicKey is the base64 Ed25519 public key the pin list of the binary
// must be signed with. Its private half is never in the repository;
// docs/genesis-signing.md says how to sign with a new pair.
const PublicKey = "lvLvdIfQD+U2IsruwiR7Tjm9HH81Z1b368hzMwzWilo="

// MaxPinsBytes is the largest pin list accepted.
const MaxPinsBytes = 64 << 10

// Trust levels (TRUST_LEVEL, 0–5) and what each lets the genesis skills do.
// A skill is active only when TRUST_LEVEL is at least its MinTrust; each
// level allows everything of the levels below it.
const (
	// TrustReadOnly (0): skills that only read — file_manager's list and
	// read, the workspace mounted read-only.
	TrustReadOnly = 0
	// TrustWrite (1): changes confined to the workspace — file_manager's
	// write and move, the workspace mounted read-write — and pages from the
	// hosts the operator approved (web_scraper: Talos fetches, the skill
	// has no network).
	TrustWrite = 1
	// TrustCode (2): running code the model wrote — code_executor (a fresh
	// sandbox without network for every snippet) — and browser_automation
	// (a browser runs the pages' scripts and can fill and submit forms).
	TrustCode = 2
	// TrustContainers (3): control of Talos-labelled containers —
	// docker_control lists, inspects, starts and stops them, nothing else.
	TrustContainers = 3
	// TrustMax is the highest level; 4 and 5 add nothing for genesis
	// skills.
	TrustMax = 5
)

// Workspace access a pin grants.
const (
	WorkspaceNone  = ""
	WorkspaceRead  = "read"
	WorkspaceWrite = "write"
)

// Pin is one genesis skill in the signed pin list.
type Pin struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	// Hash is quarantine.HashDir of the skill's folder.
	Hash string `json:"hash"`
	// MinTrust is the lowest TRUST_LEVEL at which the skill is active.
	MinTrust int `json:"min_trust"`
	// Workspace is the access to the workspace folder the skill needs:
	// WorkspaceNone, WorkspaceRead or WorkspaceWrite (then read-only below
	// TrustWrite).
	Workspace string `json:"workspace,omitempty"`
}

// Pins is the signed pin list.
type Pins struct {
	Format int   `json:"format"` // 1
	Skills []Pin `json:"skills"`
}

var (
	idPattern   = regexp.MustCompile(`^[a-z][a-z0-9_]{2,63}$`)
	verPattern  = regexp.MustCompile(`^[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}$`)
	hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// VerifyPins checks sig (base64, as in SignatureFile) over data with pub
// and only then parses data. A bad signature is code T402; a list that
// does not parse or holds an invalid pin is code T301, every problem
// named.
func VerifyPins(data, sig []byte, pub ed25519.PublicKey) (Pins, error) {
	const op = "genesis.VerifyPins"
	if len(pub) != ed25519.PublicKeySize {
		return Pins{}, talos.Errorf(talos.CodeBadSignature, op, "the public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if len(data) > MaxPinsBytes {
		return Pins{}, talos.Errorf(talos.CodeBadSignature, op, "the pin list has %d bytes, more than %d", len(data), MaxPinsBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sig)))
	if err != nil || len(raw) != ed25519.SignatureSize {
		return Pins{}, talos.Errorf(talos.CodeBadSignature, op, "%s is not a base64 Ed25519 signature (%d bytes decoded): re-sign with go run ./internal/genesis/cmd/sign", SignatureFile, len(raw))
	}
	if !ed25519.Verify(pub, data, raw) {
		return Pins{}, talos.Errorf(talos.CodeBadSignature, op, "the signature of %s does not verify with the public key in the binary: the pin list was changed or signed with another key; re-sign with go run ./internal/genesis/cmd/sign", PinsFile)
	}
	return ParsePins(data)
}

// ParsePins parses and validates a pin list without checking a signature
// (the signing command uses it; boot uses VerifyPins). Unknown fields are
// refused.
func ParsePins(data []byte) (Pins, error) {
	const op = "genesis.ParsePins"
	var p Pins
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Pins{}, talos.E(talos.CodeSkillSyntax, op, PinsFile+" is not a valid pin list", err)
	}
	if dec.More() {
		return Pins{}, talos.Errorf(talos.CodeSkillSyntax, op, "%s holds more than one JSON value", PinsFile)
	}
	var errs []error
	if p.Format != 1 {
		errs = append(errs, fmt.Errorf("format %d: want 1", p.Format))
	}
	seen := map[string]bool{}
	for i, s := range p.Skills {
		if !idPattern.MatchString(s.ID) {
			errs = append(errs, fmt.Errorf("skills[%d].id %q: want ^[a-z][a-z0-9_]{2,63}$", i, clip(s.ID)))
		} else if seen[s.ID] {
			errs = append(errs, fmt.Errorf("skills[%d].id %q: listed twice", i, s.ID))
		}
		seen[s.ID] = true
		if !verPattern.MatchString(s.Version) {
			errs = append(errs, fmt.Errorf("skills[%d].version %q: want MAJOR.MINOR.PATCH", i, clip(s.Version)))
		}
		if !hashPattern.MatchString(s.Hash) {
			errs = append(errs, fmt.Errorf("skills[%d].hash %q: want 64 lower-case hex digits", i, clip(s.Hash)))
		}
		if s.MinTrust < 0 || s.MinTrust > TrustMax {
			errs = append(errs, fmt.Errorf("skills[%d].min_trust %d: want 0 to %d", i, s.MinTrust, TrustMax))
		}
		switch s.Workspace {
		case WorkspaceNone, WorkspaceRead, WorkspaceWrite:
		default:
			errs = append(errs, fmt.Errorf("skills[%d].workspace %q: want \"\", %q or %q", i, clip(s.Workspace), WorkspaceRead, WorkspaceWrite))
		}
	}
	if len(errs) > 0 {
		return Pins{}, talos.E(talos.CodeSkillSyntax, op, PinsFile+" has invalid pins", errors.Join(errs...))
	}
	return p, nil
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Bundle is a set of genesis skills with their signed pin list and the key
// that must have signed it.
type Bundle struct {
	FS        fs.FS // holds PinsFile, SignatureFile and SkillsDir/<id>/…
	PublicKey ed25519.PublicKey
}

//go:embed pins.json pins.json.sig skills
var builtin embed.FS

// Builtin returns the bundle compiled into the binary, checked against
// PublicKey.
func Builtin() Bundle {
	pub, _ := base64.StdEncoding.DecodeString(PublicKey)
	return Bundle{FS: builtin, PublicKey: ed25519.PublicKey(pub)}
}

// Verify reads the bundle's pin list and signature and verifies them.
func (b Bundle) Verify() (Pins, error) {
	const op = "genesis.Bundle.Verify"
	data, err := fs.ReadFile(b.FS, PinsFile)
	if err != nil {
		return Pins{}, talos.E(talos.CodeBadSignature, op, "the bundle has no readable "+PinsFile, err)
	}
	sig, err := fs.ReadFile(b.FS, SignatureFile)
	if err != nil {
		return Pins{}, talos.E(talos.CodeBadSignature, op, "the bundle has no readable "+SignatureFile, err)
	}
	return VerifyPins(data, sig, b.PublicKey)
}
