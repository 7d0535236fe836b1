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

// marshalSet is MarshalSet for models a test knows to be a valid set.
func marshalSet(t testing.TB, models ...*Model) []byte {
	t.Helper()
	b, err := MarshalSet(models)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModelSetRoundTrip(t *testing.T) {
	user, tool := smallModel("user"), smallModel("tool", "web")
	user.W[3], tool.W[3] = 100, -100
	b := marshalSet(t, user, tool)
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

// rawSet lays out a set file around model files without MarshalSet's
// checks.
func rawSet(models ...[]byte) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16([]byte("TFWM\x02\x00"), uint16(len(models)))
	for _, m := range models {
		b = append(le.AppendUint32(b, uint32(len(m))), m...)
	}
	return b
}

func TestModelSetRejectsBadFiles(t *testing.T) {
	good := marshalSet(t, smallModel("user"), smallModel("tool"))
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
		"huge length":      {append(append([]byte("TFWM\x02\x00\x01\x00"), 0xfc, 0xff, 0xff, 0xff), good[12:]...), "model 1 of 1 is truncated"},
		"group twice":      {rawSet(smallModel("user").Marshal(), smallModel("user").Marshal()), `"user" has two models`},
		"no thresholds":    {rawSet(smallModel().Marshal()), "no thresholds"},
	} {
		_, err := UnmarshalSet(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one that says %q", name, err, tc.want)
		}
	}
	// MarshalSet refuses what UnmarshalSet would.
	for name, tc := range map[string]struct {
		models []*Model
		want   string
	}{
		"none":          {nil, "0 models"},
		"too many":      {make([]*Model, 17), "17 models"},
		"nil model":     {[]*Model{nil}, "model 1 has no thresholds"},
		"no thresholds": {[]*Model{smallModel("user"), smallModel()}, "model 2 has no thresholds"},
		"group twice":   {[]*Model{smallModel("user", "tool"), smallModel("tool")}, `"tool" has two models`},
	} {
		if _, err := MarshalSet(tc.models); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("MarshalSet, %s: error %v, want one that says %q", name, err, tc.want)
		}
	}
}

func FuzzUnmarshalSet(f *testing.F) {
	f.Add(marshalSet(f, smallModel("user"), smallModel("tool")))
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
// weight than in the plain regression, the fitted weights apply to plain
// counts (an attack scores further above a benign text than with the
// plain regression), and a power under 1 lies between the two.
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
	type fit struct{ ratio, gap float64 }
	train := func(nb, power float64) fit {
		cfg := TrainConfig{Bits: 10, Epochs: 5, LR: 0.5, Lambda: 0.05, Seed: 1, NBSmoothing: nb, NBPower: power}
		bias, w := Train(examples, cfg)
		noise := 0.0
		for _, h := range []uint32{100, 200, 300} {
			noise = max(noise, math.Abs(w[Bucket(h, 10)]))
		}
		attack := Logit(bias, w, []uint32{100, 200, attackMark}, 10)
		benign := Logit(bias, w, []uint32{100, 200, benignMark}, 10)
		if !(attack > 0 && benign < 0) {
			t.Fatalf("NBSmoothing %v, NBPower %v: an attack scores %.2f and a benign text %.2f", nb, power, attack, benign)
		}
		return fit{w[Bucket(attackMark, 10)] / noise, attack - benign}
	}
	plain, nb, half := train(0, 0), train(1, 1), train(1, 0.5)
	if !(nb.ratio > 1.5*plain.ratio && plain.ratio > 0) {
		t.Errorf("attack mark's weight over the largest noise weight: %.2f with NB scaling, %.2f without; want NB clearly above", nb.ratio, plain.ratio)
	}
	if !(nb.gap > 2*plain.gap) {
		t.Errorf("attack minus benign logit: %.2f with NB scaling, %.2f without; want NB clearly above (are the weights scaled back?)", nb.gap, plain.gap)
	}
	if !(half.gap > plain.gap && half.gap < nb.gap) {
		t.Errorf("attack minus benign logit with power 0.5: %.2f, want between plain %.2f and full scaling %.2f", half.gap, plain.gap, nb.gap)
	}
}
