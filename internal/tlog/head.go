package tlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// HeadFileName is the tier-1 anchor file: it records the seq and hash of the
// newest line written, so cutting lines off the end of the log (which the
// chain alone cannot show) is detected by Verify, and a restart after such a
// cut continues from the real head, leaving a visible gap.
const HeadFileName = "audit.head"

type anchor struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// encodeAnchor gives a fixed-length record (seq space-padded to 20 characters),
// so rewriting it in place never leaves stale bytes.
func encodeAnchor(seq uint64, hash string) []byte {
	b := fmt.Appendf(nil, `{"seq":%-20d,"hash":"%s"}`, seq, hash)
	return append(b, '\n')
}

// readAnchor returns the anchor in dir, ok=false when there is none.
func readAnchor(dir string) (anchor, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, HeadFileName))
	if errors.Is(err, fs.ErrNotExist) || len(data) == 0 {
		return anchor{}, false, nil
	}
	if err != nil {
		return anchor{}, false, err
	}
	var a anchor
	if err := json.Unmarshal(data, &a); err != nil || len(a.Hash) != 64 {
		return anchor{}, false, fmt.Errorf("%s is damaged: %q", HeadFileName, clip(data))
	}
	return a, true, nil
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// openAnchor opens (creating) the anchor file for in-place rewrites.
func openAnchor(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, HeadFileName), os.O_RDWR|os.O_CREATE, FileMode)
}
