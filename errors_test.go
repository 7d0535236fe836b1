package talos

import (
	"errors"
	"fmt"
	"regexp"
	"testing"
)

func TestRegistryCodesUniqueAndDocumented(t *testing.T) {
	codeRE := regexp.MustCompile(`^T[0-4][0-9]{2}$`)
	nameRE := regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	seenCode := map[Code]bool{}
	seenName := map[string]bool{}
	seenHex := map[int]bool{}
	wantCat := map[byte]Category{'0': CategoryInfrastructure, '1': CategoryResources, '2': CategoryModel, '3': CategorySkills, '4': CategorySecurity}
	for _, info := range Codes() {
		if !codeRE.MatchString(string(info.Code)) {
			t.Errorf("code %q does not match T{category}{id}", info.Code)
		}
		if seenCode[info.Code] {
			t.Errorf("code %s registered twice", info.Code)
		}
		seenCode[info.Code] = true
		if !nameRE.MatchString(info.Name) || seenName[info.Name] {
			t.Errorf("code %s: name %q is not a unique SCREAMING_SNAKE name", info.Code, info.Name)
		}
		seenName[info.Name] = true
		if info.Meaning == "" || info.Severity < SeverityInfo || info.Severity > SeverityCritical {
			t.Errorf("code %s is not documented (meaning %q, severity %v)", info.Code, info.Meaning, info.Severity)
		}
		if got := wantCat[info.Code[1]]; got != info.Category {
			t.Errorf("code %s: category %q, want %q", info.Code, info.Category, got)
		}
		if info.Hex >= 0 {
			if seenHex[info.Hex] {
				t.Errorf("hex alias %#x used twice", info.Hex)
			}
			seenHex[info.Hex] = true
			if got, ok := LookupHex(info.Hex); !ok || got.Code != info.Code {
				t.Errorf("LookupHex(%#x) = %v, %v", info.Hex, got.Code, ok)
			}
		}
	}
	// Every code of the original specification's error registry, and of its
	// table of hex failures, is present.
	for _, c := range []Code{"T001", "T002", "T003", "T004", "T005", "T006", "T007", "T008",
		"T100", "T101", "T102", "T103", "T104", "T200", "T201", "T202", "T203", "T204", "T205",
		"T300", "T301", "T302", "T303", "T304", "T305", "T400", "T401", "T402", "T403", "T404"} {
		if _, ok := Lookup(c); !ok {
			t.Errorf("spec code %s missing from registry", c)
		}
	}
	for _, h := range []int{0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x30, 0x31, 0x32} {
		if _, ok := LookupHex(h); !ok {
			t.Errorf("hex failure code %#x has no T-code", h)
		}
	}
}

func TestErrorIsByCode(t *testing.T) {
	cause := errors.New("boom")
	err := fmt.Errorf("outer: %w", E(CodeVRAMTimeout, "vram.Acquire", "waited 30s for model coder", cause))
	if !errors.Is(err, ErrVRAMTimeout) {
		t.Fatal("errors.Is by code sentinel failed")
	}
	if !errors.Is(err, &Error{Code: CodeVRAMTimeout}) {
		t.Fatal("errors.Is by *Error with same code failed")
	}
	if errors.Is(err, ErrCircuitOpen) {
		t.Fatal("errors.Is matched a different code")
	}
	if !errors.Is(err, cause) {
		t.Fatal("cause not reachable")
	}
	if CodeOf(err) != CodeVRAMTimeout {
		t.Fatalf("CodeOf = %q", CodeOf(err))
	}
	want := "outer: T100 VRAM_TIMEOUT: vram.Acquire: waited 30s for model coder: boom"
	if err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
	if CodeOf(errors.New("plain")) != "" {
		t.Fatal("CodeOf of a plain error should be empty")
	}
}

func TestErrorfWrapsCause(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	err := Errorf(CodeRedis, "boot.redis", "ping %s failed: %w", "127.0.0.1:6379", cause)
	if !errors.Is(err, cause) || !errors.Is(err, ErrRedis) {
		t.Fatalf("Errorf lost code or cause: %v", err)
	}
	if got := err.Error(); got != "T001 REDIS_CONNECTION_FAILED: boot.redis: ping 127.0.0.1:6379 failed: dial tcp: refused" {
		t.Fatalf("Error() = %q", got)
	}
}

func ExampleError() {
	err := fmt.Errorf("serving request: %w",
		E(CodeVRAMTimeout, "vram.Acquire", "waited 30s for model vision; retry later or raise vram.wait_timeout", nil))
	fmt.Println(errors.Is(err, ErrVRAMTimeout))
	fmt.Println(CodeOf(err).Info().Name)
	// Output:
	// true
	// VRAM_TIMEOUT
}
