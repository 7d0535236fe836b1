package textclf

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func smallModel(groups ...string) *Model {
	m := &Model{Bits: 8, Window: 40, Stride: 10, Scale: 0.01, W: make([]int16, 256), Thresholds: map[string]float32{}}
	for i, g := range groups {
		m.Thresholds[g] = float32(i) + 0.5
	}
	return m
}

func TestModelSetRoundTrip(t *testing.T) {
	user, tool := smallModel("user"), smallModel("tool", "web")
	user.W[3], tool.W[3] = 100, -100
	b := MarshalSet([]*Model{user, tool})
	got, err := UnmarshalSet(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["user"].W[3] != 100 || got["tool"].W[3] != -100 || got["web"] != got["tool"] {
		t.Fatalf("groups after the round trip: %v", got)
	}
	// A single model's file is a set of one that serves all its groups.
	one, err := UnmarshalSet(smallModel("user", "tool").Marshal())
	if err != nil || len(one) != 2 || one["user"] != one["tool"] {
		t.Fatalf("single model as a set: %v, %v", one, err)
	}
}

func TestModelSetRejectsBadFiles(t *testing.T) {
	good := MarshalSet([]*Model{smallModel("user"), smallModel("tool")})
	le := binary.LittleEndian
	withCount := func(n uint16) []byte {
		b := bytes.Clone(good)
		le.PutUint16(b[6:], n)
		return b
	}
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":            {nil, "bad magic"},
		"other magic":      {append([]byte("XXXX"), good[4:]...), "bad magic"},
		"future version":   {append([]byte("TFWM\x03\x00"), good[6:]...), "version 3"},
		"no models":        {withCount(0), "0 models"},
		"more than stored": {withCount(3), "model 3 of 3 is missing"},
		"truncated":        {good[:len(good)-1], "model 2 of 2 is truncated"},
		"trailing bytes":   {append(bytes.Clone(good), 0), "1 bytes after the last model"},
		"group twice":      {MarshalSet([]*Model{smallModel("user"), smallModel("user")}), `"user" has two models`},
		"no thresholds":    {MarshalSet([]*Model{smallModel()}), "no thresholds"},
	} {
		_, err := UnmarshalSet(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one that says %q", name, err, tc.want)
		}
	}
}

func FuzzUnmarshalSet(f *testing.F) {
	f.Add(MarshalSet([]*Model{smallModel("user"), smallModel("tool")}))
	f.Add(smallModel("user").Marshal())
	f.Add([]byte("TFWM\x02\x00\x01\x00\x05\x00\x00\x00TFWM\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		models, err := UnmarshalSet(b)
		if err != nil {
			return
		}
		if len(models) == 0 {
			t.Fatal("accepted a file that serves no group")
		}
		for g, m := range models {
			if _, ok := m.Thresholds[g]; !ok || len(m.W) != 1<<m.Bits {
				t.Fatalf("group %q: model without its threshold or with %d weights for %d bits", g, len(m.W), m.Bits)
			}
		}
	})
}

// TestNBScalingFavoursSeparatingFeatures checks naive-Bayes scaling on a set
// where one feature marks each class and many others are shared noise:
// under the same strong L2 penalty the marking features get more of the
// weight than in the plain regression, and the model still scores the
// plain counts (an attack above a benign text).
func TestNBScalingFavoursSeparatingFeatures(t *testing.T) {
	const attackMark, benignMark = 1, 2
	var examples []Example
	for i := range 200 {
		h := []uint32{uint32(100 + i%37), uint32(200 + i%53), uint32(300 + i%11)}
		label := float64(i % 2)
		mark := uint32(benignMark)
		if label == 1 {
			mark = attackMark
		}
		if i%10 != 0 { // the mark is missing from a tenth of the texts
			h = append(h, mark)
		}
		examples = append(examples, Example{Hashes: h, Label: label, Weight: 1})
	}
	ratio := func(nb float64) (float64, float64, []float64) {
		cfg := TrainConfig{Bits: 10, Epochs: 5, LR: 0.5, Lambda: 0.05, Seed: 1, NBSmoothing: nb}
		bias, w := Train(examples, cfg)
		noise := 0.0
		for _, h := range []uint32{100, 200, 300} {
			noise = max(noise, math.Abs(w[Bucket(h, 10)]))
		}
		return w[Bucket(attackMark, 10)] / noise, bias, w
	}
	plain, _, _ := ratio(0)
	nb, bias, w := ratio(1)
	if !(nb > 1.5*plain && plain > 0) {
		t.Fatalf("attack mark's weight over the largest noise weight: %.2f with NB scaling, %.2f without; want NB clearly above", nb, plain)
	}
	attack := Logit(bias, w, []uint32{100, 200, attackMark}, 10)
	benign := Logit(bias, w, []uint32{100, 200, benignMark}, 10)
	if !(attack > 0 && benign < 0) {
		t.Fatalf("NB-scaled model scores an attack %.2f and a benign text %.2f", attack, benign)
	}
}
